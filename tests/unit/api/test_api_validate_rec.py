"""The REC rules of the one validator (shared by reconcile and admission)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api import FieldError, SpecInvalid, check_rec, rec_warnings, validate_rec

pytestmark = pytest.mark.unit


def rec(name: str = "rec", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1",
        "kind": "RedisEnterpriseCluster",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }


def rules(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in errors}


def test_minimal_rec_is_valid() -> None:
    assert validate_rec(rec()) == []
    assert check_rec(rec()).spec.nodes == 3


def test_empty_spec_is_valid() -> None:
    assert validate_rec({"metadata": {"name": "rec"}}) == []


@given(st.integers(min_value=1, max_value=50).map(lambda k: 2 * k + 1))
def test_every_odd_count_of_at_least_three_is_valid(nodes: int) -> None:
    assert validate_rec(rec(nodes=nodes)) == []


@given(st.integers(min_value=-5, max_value=100).filter(lambda n: n < 3 or n % 2 == 0))
def test_every_even_or_small_count_is_refused_naming_spec_nodes(nodes: int) -> None:
    errors = validate_rec(rec(nodes=nodes))
    assert ("spec.nodes", "odd-nodes") in rules(errors)
    assert all(error.field == "spec.nodes" for error in errors)


odd_counts = st.integers(min_value=1, max_value=25).map(lambda k: 2 * k + 1)


@given(odd_counts, odd_counts)
def test_a_scale_step_must_keep_the_majority(old: int, new: int) -> None:
    errors = validate_rec(rec(nodes=new), rec(nodes=old))
    lost_majority = new < old // 2 + 1
    assert (("spec.nodes", "scale-majority") in rules(errors)) == lost_majority
    if not lost_majority:
        assert errors == []


def test_five_to_one_is_refused_with_a_clear_message() -> None:
    errors = validate_rec(rec(nodes=1), rec(nodes=5))
    assert rules(errors) == {("spec.nodes", "odd-nodes"), ("spec.nodes", "scale-majority")}
    message = next(error.message for error in errors if error.rule == "scale-majority")
    assert "majority of 3" in message


def test_license_and_license_secret_are_exclusive() -> None:
    errors = validate_rec(rec(license="secret-key-text", licenseSecretName="lic"))
    assert rules(errors) == {("spec.licenseSecretName", "license-xor-secret")}
    assert "secret-key-text" not in str(errors)
    assert validate_rec(rec(license="k")) == []
    assert validate_rec(rec(licenseSecretName="lic")) == []


def test_storage_class_is_immutable() -> None:
    old = rec(persistentSpec={"enabled": True, "storageClassName": "fast"})
    new = rec(persistentSpec={"enabled": True, "storageClassName": "slow"})
    assert rules(validate_rec(new, old)) == {("spec.persistentSpec.storageClassName", "immutable")}
    assert validate_rec(old, old) == []
    unset = rec(persistentSpec={"enabled": True, "storageClassName": ""})
    assert validate_rec(unset, rec(persistentSpec={"enabled": True})) == []


def test_persistence_cannot_be_switched() -> None:
    enabled = rec(persistentSpec={"enabled": True})
    assert rules(validate_rec(enabled, rec())) == {("spec.persistentSpec.enabled", "immutable")}
    assert rules(validate_rec(rec(), enabled)) == {("spec.persistentSpec.enabled", "immutable")}
    disabled = rec(persistentSpec={"enabled": False})
    assert validate_rec(disabled, rec()) == []


def test_volumes_never_shrink_and_grow_only_when_allowed() -> None:
    def persistent(size: str, resize: bool = False) -> dict[str, Any]:
        return rec(persistentSpec={"volumeSize": size, "enablePersistentVolumeResize": resize})

    assert rules(validate_rec(persistent("20Gi"), persistent("30Gi"))) == {
        ("spec.persistentSpec.volumeSize", "volume-shrink")
    }
    assert rules(validate_rec(persistent("40Gi"), persistent("30Gi"))) == {
        ("spec.persistentSpec.volumeSize", "volume-resize-disabled")
    }
    assert validate_rec(persistent("40Gi", resize=True), persistent("30Gi")) == []
    assert validate_rec(persistent("30720Mi"), persistent("30Gi")) == []  # same size, other unit


def test_default_volume_size_follows_memory_and_the_message_says_so() -> None:
    old = rec(persistentSpec={"enabled": True})
    smaller = rec(
        persistentSpec={"enabled": True},
        redisEnterpriseNodeResources={"limits": {"memory": "2Gi"}, "requests": {"memory": "2Gi"}},
    )
    errors = validate_rec(smaller, old)
    assert rules(errors) == {("spec.persistentSpec.volumeSize", "volume-shrink")}
    assert "volumeSize: 20Gi" in errors[0].message


def test_volume_must_hold_the_memory() -> None:
    errors = validate_rec(rec(persistentSpec={"volumeSize": "1Gi"}))
    assert rules(errors) == {("spec.persistentSpec.volumeSize", "volume-size")}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"redisEnterpriseNodeResources": {"limits": {"memory": "4GB"}}},
            "spec.redisEnterpriseNodeResources.limits.memory",
        ),
        ({"persistentSpec": {"volumeSize": "lots"}}, "spec.persistentSpec.volumeSize"),
        ({"uiServiceType": "Ingress"}, "spec.uiServiceType"),
        ({"nodes": "three"}, "spec.nodes"),
        ({"persistentSpec": {"enabled": True, "size": "1Gi"}}, "spec.persistentSpec.size"),
        (
            {"redisEnterpriseImageSpec": {"imagePullPolicy": "Sometimes"}},
            "spec.redisEnterpriseImageSpec.imagePullPolicy",
        ),
        (
            {"servicesRiggerSpec": {"databaseServiceType": "cluster_ip,nodeport"}},
            "spec.servicesRiggerSpec.databaseServiceType",
        ),
        ({"serviceBrokerSpec": {}}, "spec.serviceBrokerSpec.enabled"),
        ({"slaveHA": {"slaveHAGracePeriod": -1}}, "spec.slaveHA.slaveHAGracePeriod"),
        ({"slaveHA": {"slaveHAGracePeriod": "soon"}}, "spec.slaveHA.slaveHAGracePeriod"),
    ],
)
def test_schema_errors_name_the_field(spec: dict[str, Any], field: str) -> None:
    errors = validate_rec(rec(**spec))
    assert [error.field for error in errors] == [field]
    assert errors[0].rule == "schema"
    assert "Value error" not in errors[0].message


def test_requests_may_not_exceed_limits() -> None:
    resources = {"limits": {"cpu": "1", "memory": "4Gi"}, "requests": {"cpu": "1500m", "memory": "4096Mi"}}
    errors = validate_rec(rec(redisEnterpriseNodeResources=resources))
    assert rules(errors) == {("spec.redisEnterpriseNodeResources.requests.cpu", "request-within-limit")}


@pytest.mark.parametrize(
    ("labels", "rule"),
    [
        ({"app": "x"}, "reserved-label"),
        ({"redis.io/role": "x"}, "reserved-label"),
        ({"redis.io/anything": "x"}, "reserved-label"),
        ({"-bad": "x"}, "label-syntax"),
        ({"ok": "not ok"}, "label-syntax"),
        ({"ok": "x" * 64}, "label-syntax"),
    ],
)
def test_extra_labels(labels: dict[str, str], rule: str) -> None:
    assert {error.rule for error in validate_rec(rec(extraLabels=labels))} == {rule}


def test_good_extra_labels() -> None:
    assert validate_rec(rec(extraLabels={"team": "data", "example.com/tier": "gold", "empty": ""})) == []


@pytest.mark.parametrize("name", ["Rec", "1rec", "rec_1", "a" * 48, ""])
def test_rec_name_must_make_valid_object_names(name: str) -> None:
    assert rules(validate_rec(rec(name=name))) == {("metadata.name", "name")}


def test_longest_name_is_accepted() -> None:
    assert validate_rec(rec(name="a" * 47)) == []


def test_credential_secret_is_immutable() -> None:
    errors = validate_rec(rec(clusterCredentialSecretName="other"), rec())
    assert rules(errors) == {("spec.clusterCredentialSecretName", "immutable")}


def test_an_invalid_old_spec_constrains_nothing() -> None:
    assert validate_rec(rec(nodes=3), rec(nodes="many")) == []


def test_check_rec_raises_with_every_error() -> None:
    with pytest.raises(SpecInvalid) as raised:
        check_rec(rec(nodes=2, license="k", licenseSecretName="s"))
    assert len(raised.value.errors) == 2
    assert "spec.nodes" in str(raised.value)


def test_status_never_invalidates_a_spec() -> None:
    body = rec() | {"status": {"state": "SomethingNew", "kopf": {"progress": {}}}}
    assert validate_rec(body) == []


def test_ignored_fields_are_warned_about() -> None:
    warnings = rec_warnings(rec(nodes=3, bootstrapperImageSpec={}, enforceIPv4=True, containerTimezone={}))
    assert [w.field for w in warnings] == [
        "spec.bootstrapperImageSpec",
        "spec.enforceIPv4",
        "spec.containerTimezone",
    ]
    # empty refused blocks ask for nothing: no error, no warning
    assert validate_rec(rec(nodes=3, certificates={}, ldap={})) == []
    assert rec_warnings(rec(nodes=3, certificates={}, ldap={})) == []


def test_ui_service_cannot_be_external_name() -> None:
    assert rules(validate_rec(rec(uiServiceType="ExternalName"))) == {
        ("spec.uiServiceType", "ui-service-type")
    }
    assert validate_rec(rec(uiServiceType="LoadBalancer")) == []


def test_fields_inside_open_blocks() -> None:
    body = rec(
        servicesRiggerSpec={"servicesRiggerAdditionalPodSpecAttributes": {}, "serviceNamign": "x"},
        upgradeSpec={"autoUpgradeRedisEnterprise": True},
    )
    assert [(w.field, w.rule) for w in rec_warnings(body)] == [
        ("spec.servicesRiggerSpec.servicesRiggerAdditionalPodSpecAttributes", "ignored"),
        ("spec.servicesRiggerSpec.serviceNamign", "unknown-field"),
        ("spec.upgradeSpec", "ignored"),
    ]
    # a spec that does not parse is still warned about (the schema errors come with it)
    assert [w.field for w in rec_warnings(rec(nodes="bad", size=3))] == ["spec.size"]


def test_unknown_field_in_a_known_block_is_named() -> None:
    (error,) = validate_rec(rec(persistentSpec={"enabled": True, "sise": "1Gi"}))
    assert error.field == "spec.persistentSpec.sise" and "unknown field" in error.message


def test_garbage_metadata_is_reported_not_raised() -> None:
    errors = validate_rec({"metadata": {"name": "rec", "labels": "x"}, "spec": {}})
    assert [error.field for error in errors] == ["metadata.labels"]


def test_rec_name_is_immutable() -> None:
    assert rules(validate_rec(rec(name="other"), rec())) == {("metadata.name", "immutable")}
