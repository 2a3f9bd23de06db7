"""The REST API's certificate: the one given, or a self-signed one generated on first start."""

from __future__ import annotations

from pathlib import Path

from recluster.certificates import not_after, self_signed
from recluster.node.processes import write_private

SELF_SIGNED_DAYS = 3650


def ensure_certificate(tls_dir: Path, names: list[str]) -> tuple[Path, Path]:
    """(cert, key) in tls_dir; generated (self-signed, 10 years, SANs = names) when absent."""
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    pem = self_signed(names[0], names, days=SELF_SIGNED_DAYS)
    write_private(key_path, pem.key)
    tls_dir.mkdir(parents=True, exist_ok=True)
    cert_path.write_text(pem.certificate)
    return cert_path, key_path


def certificate_expiry(cert_path: Path) -> float:
    return not_after(cert_path.read_bytes()).timestamp()
