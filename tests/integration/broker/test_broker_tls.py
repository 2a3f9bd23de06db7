"""With --tls-cert/--tls-key the broker serves HTTPS only (a self-signed certificate for its
loopback address), with the same auth and API."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.integration.broker.conftest import BrokerProcess

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


def self_signed(directory: Path, address: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recluster-broker-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_tls_by_flag(broker_cluster: LoopbackCluster, tmp_path: Path) -> None:
    address = f"{broker_cluster.base}31"
    tls = self_signed(tmp_path / "tls", address)
    process = BrokerProcess(broker_cluster, tmp_path, host_number=31, tls=tls)
    process.start()
    try:
        async with process.client() as client:
            response = await client.get("/v2/catalog")
            assert response.status_code == 200
            assert response.json()["services"][0]["name"] == "redis-test-rec"
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5) as plain:
                await plain.get(f"http://{address}:{process.port}/v2/catalog")
    finally:
        process.stop()
    assert not process.alive()
