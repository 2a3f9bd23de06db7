"""A user's certificate for the databases (check_served_certificate): the key must be the
certificate's, every certificate of the chain valid now, the chain complete up to a self-signed CA;
what the shards serve and what the cluster trusts."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from recluster.certificates import (
    Authority,
    CertificateRefused,
    check_served_certificate,
    earliest_expiry,
    join_pem,
    self_signed,
    subject,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def test_a_leaf_of_a_ca_given_apart_is_served_alone_and_its_ca_trusted() -> None:
    root = Authority.create("user root", days=30, now=NOW)
    leaf = root.issue("db", ["db", "db.ns.svc"], days=10, now=NOW)
    checked = check_served_certificate(leaf.certificate, leaf.key, root.pem().certificate, now=NOW)
    assert certs(checked.chain) == certs(leaf.certificate)
    assert certs(checked.anchors) == [root.certificate]
    assert checked.names == ("db", "db.ns.svc")
    # the same chain with the root appended to the certificate (RE's body, no ca): the same result
    again = check_served_certificate(join_pem(leaf.certificate, root.pem().certificate), leaf.key, now=NOW)
    assert (again.chain, again.anchors) == (checked.chain, checked.anchors)


def intermediate(root: Authority) -> Authority:
    """A CA signed by `root` (Authority.issue makes leaves only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(subject("middle")).issuer_name(root.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(root._key, hashes.SHA256()))
    return Authority(cert, key)


def test_an_intermediate_is_served_with_the_leaf_and_only_the_root_is_an_anchor() -> None:
    root = Authority.create("root", days=30, now=NOW)
    signer = intermediate(root)
    leaf = signer.issue("db", ["db"], days=10, now=NOW)
    checked = check_served_certificate(join_pem(leaf.certificate, signer.pem().certificate), leaf.key,
                                       root.pem().certificate, now=NOW)
    assert certs(checked.chain) == [*certs(leaf.certificate), signer.certificate]
    assert certs(checked.anchors) == [root.certificate]
    # without the intermediate the chain has a hole, named
    with pytest.raises(CertificateRefused, match="CN=middle"):
        check_served_certificate(leaf.certificate, leaf.key, root.pem().certificate, now=NOW)


def test_a_self_signed_certificate_is_its_own_anchor() -> None:
    pem = self_signed("db", ["db"], days=5, now=NOW)
    checked = check_served_certificate(pem.certificate, pem.key, now=NOW)
    assert checked.anchors == checked.chain


@pytest.mark.parametrize(("case", "message"), [
    ("other key", "the key is not the key of the certificate"),
    ("expired", "expired at"),
    ("not yet", "is not valid before"),
    ("no ca", "the chain stops at CN=db"),
    ("garbage key", "the key cannot be read"),
    ("garbage cert", "the certificate is not PEM certificates"),
    ("empty cert", "the certificate is not PEM certificates"),
    ("ca expired", "CN=old root expired at"),
])
def test_what_cannot_be_served_is_refused_naming_the_problem(case: str, message: str) -> None:
    root = Authority.create("root", days=30, now=NOW)
    leaf = root.issue("db", ["db"], days=10, now=NOW)
    certificate, key, ca, when = leaf.certificate, leaf.key, root.pem().certificate, NOW
    if case == "other key":
        key = root.issue("other", days=10, now=NOW).key
    elif case == "expired":
        when = NOW + dt.timedelta(days=11)
    elif case == "not yet":
        when = NOW - dt.timedelta(days=1)
    elif case == "no ca":
        ca = ""
    elif case == "garbage key":
        key = "not a key"
    elif case == "garbage cert":
        certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif case == "empty cert":
        certificate = ""
    elif case == "ca expired":
        old = Authority.create("old root", days=1, now=NOW - dt.timedelta(days=5))
        leaf = old.issue("db", ["db"], days=10, now=NOW)
        certificate, key, ca = leaf.certificate, leaf.key, old.pem().certificate
    with pytest.raises(CertificateRefused, match=message) as refused:
        check_served_certificate(certificate, key, ca, now=when)
    assert "PRIVATE KEY" not in str(refused.value)


def test_the_earliest_expiry_of_a_bundle_is_the_first_to_run_out() -> None:
    soon, later = Authority.create("soon", days=3, now=NOW), Authority.create("later", days=30, now=NOW)
    bundle = join_pem(later.pem().certificate, soon.pem().certificate)
    assert earliest_expiry(bundle) == soon.certificate.not_valid_after_utc
    assert earliest_expiry("") is None
