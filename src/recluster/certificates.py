"""X.509 certificates as every part makes them: certificate authorities, the certificates they sign,
self-signed ones, and what a certificate says (its names, its expiry). Pure: PEM text in and out,
the clock an argument; where the files go is the caller's business (the local cluster's state
directory, a node's certificate directory, a Kubernetes Secret)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# backdated so a peer whose clock is a little behind accepts a certificate made just now
BACKDATE = dt.timedelta(minutes=5)
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class Pem:
    """A certificate and its private key, PEM-encoded."""

    certificate: str
    key: str = field(repr=False)  # never printed


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def subject(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]))  # the X.509 limit
    return x509.Name(attrs)


def san_entries(names: Sequence[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses as subject alternative names, duplicates dropped, order kept."""
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _builder(subject_name: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int,
             now: dt.datetime | None) -> x509.CertificateBuilder:
    """What every certificate made here has: a fresh serial, validity from now (backdated), its key."""
    start = _now(now) - BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(subject_name).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + BACKDATE + dt.timedelta(days=days))
    )


def _usages(server: bool, client: bool) -> x509.ExtendedKeyUsage:
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return x509.ExtendedKeyUsage(usages)


class Authority:
    """A certificate authority whose key is at hand: it signs leaf certificates."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    @classmethod
    def create(cls, common_name: str, *, days: int, now: dt.datetime | None = None,
               organizations: Sequence[str] = ()) -> Authority:
        key = _new_key()
        name = subject(common_name, organizations)
        cert = (
            _builder(name, name, key, days, now)
            # signs leaves only: a leaked leaf cannot act as a CA
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_pem(cls, pem: Pem) -> Authority:
        key = serialization.load_pem_private_key(pem.key.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key is not an EC private key")
        return cls(x509.load_pem_x509_certificate(pem.certificate.encode()), key)

    def pem(self) -> Pem:
        return Pem(cert_pem(self.certificate), key_pem(self._key))

    def issue(self, common_name: str, names: Sequence[str] = (), *, days: int, server: bool = True,
              client: bool = False, organizations: Sequence[str] = (),
              now: dt.datetime | None = None) -> Pem:
        """A new key and a certificate for it, valid for `names` (DNS names or IP addresses)."""
        key = _new_key()
        builder = (
            _builder(subject(common_name, organizations), self.certificate.subject, key, days, now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usages(server, client), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(san_entries(names)), critical=False)
        return Pem(cert_pem(builder.sign(self._key, hashes.SHA256())), key_pem(key))


def self_signed(common_name: str, names: Sequence[str], *, days: int,
                now: dt.datetime | None = None) -> Pem:
    """A certificate that vouches for itself (a node outside Kubernetes, which has no CA)."""
    key = _new_key()
    name = subject(common_name)
    cert = (
        _builder(name, name, key, days, now)
        .add_extension(x509.SubjectAlternativeName(san_entries(names)), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pem(cert_pem(cert), key_pem(key))


def certificate_names(certificate_pem: str) -> list[str]:
    """DNS names and IP addresses of a PEM certificate's SAN extension (none when it has none)."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    addresses = (str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return [*san.get_values_for_type(x509.DNSName), *addresses]


def issued_by(certificate_pem: str, ca_pem: str) -> bool:
    """Whether the first certificate of `certificate_pem` is signed by the CA `ca_pem` (its key, not
    only its name: a rotated CA keeps the name)."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def earliest_expiry(pems: str) -> dt.datetime | None:
    """When the first of the PEM certificates in `pems` expires (None: there is none)."""
    try:
        certs = x509.load_pem_x509_certificates(pems.encode())
    except ValueError:
        return None
    return min((cert.not_valid_after_utc for cert in certs), default=None)


def join_pem(*pems: str) -> str:
    """PEM texts one after the other (a trust list), the empty ones left out."""
    return "".join(pem.strip() + "\n" for pem in pems if pem.strip())


def not_after(certificate_pem: str | bytes) -> dt.datetime:
    data = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
    return x509.load_pem_x509_certificate(data).not_valid_after_utc


class CertificateRefused(ValueError):
    """A certificate and key that cannot be served; the message names the problem (never the key)."""


@dataclass(frozen=True)
class ServedCertificate:
    """A user's certificate a server presents, checked: `chain` (the leaf, then the intermediates it
    needs, PEM), its `key`, and `anchors`: the self-signed CA certificate(s) the chain ends at, which a
    client (and the cluster's own replicas and sentinels) verifies it with."""

    chain: str
    key: str = field(repr=False)
    anchors: str
    not_after: dt.datetime
    names: tuple[str, ...]


@dataclass(frozen=True)
class UserCertificate:
    """A checked user certificate as the cluster keeps it: what a server presents (`chain`), its key,
    and the CA(s) that verify it (`anchors`)."""

    chain: str
    key: str = field(repr=False)
    anchors: str


def _load_all(text: str, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise CertificateRefused(f"{what} is not PEM certificates: {exc}") from None
    if not certs:
        raise CertificateRefused(f"{what} holds no certificate")
    return certs


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _issuer_of(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer or candidate is cert:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(no subject)"


def check_served_certificate(certificate: str, key: str, ca: str = "",
                             now: dt.datetime | None = None) -> ServedCertificate:
    """Check a certificate a user gives a server (pure): `certificate` is the leaf first, then any
    intermediates (and possibly the root); `ca` the CA certificate(s) that sign it, when given apart
    (a cert-manager Secret's ca.crt). The key must be the leaf's, every certificate of the chain valid
    now, and the chain must end at a self-signed CA (OpenSSL, hence Redis, trusts only those as
    anchors: without one, replicas could not verify their master). CertificateRefused names what is
    wrong, also for anything the parser refuses deeper in a certificate (a malformed extension, an
    algorithm it does not know)."""
    try:
        return _check_served(certificate, key, ca, now)
    except CertificateRefused:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateRefused(f"the certificate cannot be read: {exc}") from None


def _check_served(certificate: str, key: str, ca: str, now: dt.datetime | None) -> ServedCertificate:
    """The checks of check_served_certificate."""
    when = _now(now)
    given = _load_all(certificate, "the certificate")
    extra = _load_all(ca, "the CA certificate") if ca.strip() else []
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = "it is encrypted" if "password" in str(exc).lower() else "it is not a PEM private key"
        raise CertificateRefused(f"the key cannot be read: {reason} (an unencrypted PEM key is needed)") \
            from None
    leaf = given[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(serialization.Encoding.DER, public) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, public):
        raise CertificateRefused(f"the key is not the key of the certificate ({_describe(leaf)}): "
                                 "give the certificate's own private key")
    chain, anchors, current = [leaf], [], leaf
    pool = [*given[1:], *extra]
    while not _self_signed(current):
        issuer = _issuer_of(current, pool)
        if issuer is None:
            raise CertificateRefused(
                f"the chain stops at {_describe(current)}: the certificate of its issuer "
                f"({current.issuer.rfc4514_string()}) is missing; add the intermediates to the certificate "
                "and the root CA (self-signed) to the certificate or to ca.crt")
        if len(chain) > 8:
            raise CertificateRefused("the chain is longer than 8 certificates")
        pool.remove(issuer)
        if _self_signed(issuer):
            anchors.append(issuer)
        else:
            chain.append(issuer)
        current = issuer
    if not anchors:
        anchors.append(leaf)  # a self-signed certificate is its own anchor
    for cert in [*chain, *anchors]:
        if cert.not_valid_after_utc <= when:
            raise CertificateRefused(f"{_describe(cert)} expired at {cert.not_valid_after_utc.isoformat()}")
        if cert.not_valid_before_utc > when:
            raise CertificateRefused(
                f"{_describe(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}")
    # a CA certificate given in ca.crt beside the root (another root, a bundle) is trusted too
    anchors += [cert for cert in extra if cert in pool and _self_signed(cert)]
    leaf_pem = cert_pem(leaf)
    return ServedCertificate(
        chain="".join(cert_pem(cert) for cert in chain),
        key=key.strip() + "\n",
        anchors="".join(dict.fromkeys(cert_pem(cert) for cert in anchors)),
        not_after=leaf.not_valid_after_utc,
        names=tuple(certificate_names(leaf_pem)),
    )
