"""Which keys of a user's Secret hold a brought certificate (the databases', the REST API's, the
console's, the metrics endpoint's): Redis Enterprise's shape and kubernetes.io/tls; what is wrong with
one that holds none, and the CA ConfigMap a platform mounts."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.rec.user_certificates import (
    BROUGHT,
    SecretCertificate,
    build_ca_config_map,
    read_secret,
    secret_name_of,
)

pytestmark = pytest.mark.unit


def secret(**data: str) -> dict[str, object]:
    return {"data": {key.replace("_", "."): base64.b64encode(value.encode()).decode()
                     for key, value in data.items()}}


def test_both_secret_shapes_are_read_and_ca_crt_beside_either() -> None:
    assert read_secret(secret(certificate="C", key="K", name="proxy"), "s") == SecretCertificate("C", "K", "")
    assert read_secret(secret(tls_crt="C", tls_key="K", ca_crt="A"), "s") == SecretCertificate("C", "K", "A")
    assert "K" not in repr(read_secret(secret(certificate="C", key="K"), "s"))


@pytest.mark.parametrize(("found", "says"), [
    (None, "Secret s does not exist"),
    (secret(certificate="C"), "neither `certificate` and `key` nor `tls.crt` and `tls.key`"),
    (secret(certificate="C", key="K", name="api"), "is for the 'api' certificate"),
])
def test_a_secret_without_a_certificate_is_named(found: dict[str, object] | None, says: str) -> None:
    problem = read_secret(found, "s")
    assert isinstance(problem, str) and says in problem
    assert problem.startswith("spec.certificates.proxyCertificateSecretName: ")


def test_the_ca_config_map_is_owned_by_the_rec() -> None:
    rec = RedisEnterpriseCluster.model_validate({
        "apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseCluster",
        "metadata": {"name": "rec", "namespace": "ns", "uid": "u1"}, "spec": {"nodes": 3}})
    made = build_ca_config_map(rec, "PEM")
    assert made["metadata"]["name"] == "rec-database-ca" and made["data"] == {"ca.crt": "PEM"}
    assert made["metadata"]["ownerReferences"][0]["uid"] == "u1"


@pytest.mark.parametrize("brought", BROUGHT, ids=lambda b: b.name)
def test_each_brought_certificate_reads_its_own_field_and_secret_label(brought: Any) -> None:
    """The same Secret shapes for the databases', the REST API's, the console's and the metrics
    endpoint's certificate; a problem names that certificate's field, and a Secret labelled (key
    `name`) for another certificate is refused, naming both."""
    rec = RedisEnterpriseCluster.model_validate({
        "apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseCluster",
        "metadata": {"name": "rec", "namespace": "ns", "uid": "u1"},
        "spec": {"nodes": 3, "certificates": {brought.spec_key: "mine"}}})
    assert secret_name_of(rec, brought) == "mine"
    assert all(secret_name_of(rec, other) is None for other in BROUGHT if other is not brought)
    assert read_secret(secret(certificate="C", key="K", name=brought.name), "s", brought) == \
        SecretCertificate("C", "K", "")
    assert read_secret(secret(tls_crt="C", tls_key="K", ca_crt="A"), "s", brought) == \
        SecretCertificate("C", "K", "A")
    missing = read_secret(None, "s", brought)
    assert isinstance(missing, str) and missing.startswith(f"spec.certificates.{brought.spec_key}: ")
    other = "cm" if brought.name != "cm" else "api"
    mislabelled = read_secret(secret(certificate="C", key="K", name=other), "s", brought)
    assert isinstance(mislabelled, str) and f"is for the {other!r} certificate" in mislabelled
    assert f"not {brought.name!r}" in mislabelled
