"""The one place certificates are made: a CA's leaves verify against it for their names, for the uses
asked; a self-signed certificate carries its names; a key is never printed."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from recluster.certificates import Authority, Pem, certificate_names, not_after, self_signed

pytestmark = pytest.mark.unit

LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
DNS = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
IPV4 = st.tuples(*[st.integers(0, 255)] * 3).map(lambda t: "127.{}.{}.{}".format(*t))


def test_a_leaf_verifies_against_its_ca_for_its_name_and_not_another() -> None:
    ca = Authority.create("test CA", days=10)
    leaf = ca.issue("db", ["db.ns.svc", "127.0.0.9"], days=5, server=True, client=True)
    cert = x509.load_pem_x509_certificate(leaf.certificate.encode())
    cert.verify_directly_issued_by(ca.certificate)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u.dotted_string for u in usages} == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
    context = ssl.create_default_context(cadata=ca.pem().certificate)
    assert context.verify_mode == ssl.CERT_REQUIRED
    # the CA may sign leaves only
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0


def test_a_ca_read_back_from_pem_signs_leaves_that_verify() -> None:
    ca = Authority.from_pem(Authority.create("kept CA", days=10).pem())
    leaf = ca.issue("x", ["x.example"], days=1)
    x509.load_pem_x509_certificate(leaf.certificate.encode()).verify_directly_issued_by(ca.certificate)


def test_validity_counts_from_now() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ca = Authority.create("c", days=100, now=now)
    leaf = ca.issue("l", ["l"], days=30, now=now)
    assert not_after(leaf.certificate) == now + dt.timedelta(days=30)
    assert not_after(ca.pem().certificate) == now + dt.timedelta(days=100)


def test_a_key_is_never_in_the_repr() -> None:
    pem = self_signed("n", ["n"], days=1)
    assert "PRIVATE" in pem.key and "PRIVATE" not in repr(pem) and pem.key not in repr(pem)
    assert "PRIVATE" not in repr(Pem("c", "-----BEGIN PRIVATE KEY-----"))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(DNS, IPV4), min_size=1, max_size=6))
def test_the_names_given_are_the_names_carried(names: list[str]) -> None:
    pem = self_signed(names[0], names, days=1)
    assert sorted(certificate_names(pem.certificate)) == sorted(set(names))
