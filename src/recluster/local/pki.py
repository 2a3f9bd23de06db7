"""Certificates and keys of the local cluster: one CA, serving and client certificates signed by
it, and the service-account signing key. Written once per state directory, mode 0600 for keys,
in directories only their owner may enter (0700)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recluster.certificates import Authority, Pem, certificate_names, key_pem

VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _private_dir(directory: Path) -> None:
    """A directory holding keys: only its owner may list or enter it (also one made by an older
    version, which left it open)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    _private_dir(path.parent)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


class CertificateAuthority:
    """The local cluster's CA, kept in its state directory, and the certificates it signs there."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
        _private_dir(directory)
        if not self.pair.cert.exists() or not self.pair.key.exists():
            made = Authority.create(f"recluster-local-{name}", days=VALIDITY_DAYS).pem()
            _write_private(self.pair.key, made.key.encode())
            self.pair.cert.write_text(made.certificate)
        self._authority = Authority.from_pem(Pem(self.pair.cert.read_text(), self.pair.key.read_text()))

    def issue(
        self,
        directory: Path,
        name: str,
        *,
        common_name: str,
        organizations: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> CertPair:
        """Issue (once) a certificate named `name` in `directory`; reissued if its SANs changed."""
        pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
        _private_dir(directory)
        names = [*dns_names, *ip_addresses]
        if (pair.cert.exists() and pair.key.exists()
                and sorted(certificate_names(pair.cert.read_text())) == sorted(set(names))):
            return pair
        pem = self._authority.issue(common_name, names, days=VALIDITY_DAYS, server=server, client=client,
                                    organizations=organizations)
        _write_private(pair.key, pem.key.encode())
        pair.cert.write_text(pem.certificate)
        return pair


def service_account_keys(directory: Path) -> CertPair:
    """The key pair that signs service-account tokens (`cert` holds the public key)."""
    pair = CertPair(directory / "sa.pub", directory / "sa.key")
    _private_dir(directory)
    if not pair.key.exists() or not pair.cert.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(pair.key, key_pem(key).encode())
        pair.cert.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pair
