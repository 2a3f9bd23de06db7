"""Nothing silently weakened: every spec field of the contract is implemented, warned about
(ignored) or refused until implemented, from the one table in recluster.api.support."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from recluster.api import (
    REC_FIELDS,
    REDB_FIELDS,
    SpecField,
    SpecInvalid,
    Support,
    check_redb,
    describe,
    rec_warnings,
    redb_warnings,
    validate_rec,
    validate_redb,
)
from recluster.api.conditions import spec_event, spec_is_invalid, spec_is_valid, updated_conditions
from recluster.api.rec import CertificatesSpec, RedisEnterpriseClusterSpec, ServicesRiggerSpec, SlaveHaSpec
from recluster.api.redb import RedisEnterpriseDatabaseSpec

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[3] / "docs" / "api.md"
REC_TABLE = {field.path: field for field in REC_FIELDS}
REDB_TABLE = {field.path: field for field in REDB_FIELDS}


def rec(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1",
        "kind": "RedisEnterpriseCluster",
        "metadata": {"name": "rec", "namespace": "ns"},
        "spec": spec,
    }


def redb(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": "tlsdb", "namespace": "ns"},
        "spec": spec,
    }


def fields(errors: list[Any]) -> set[str]:
    return {error.field for error in errors}


def test_the_manifest_of_issue_17_is_accepted_and_a_field_not_built_is_refused() -> None:
    issue_17 = redb(memorySize="100MB", tlsMode="enabled", defaultUser=False)
    assert validate_redb(issue_17, cluster_exists=True) == []
    body = redb(memorySize="100MB", tlsMode="enabled", type="memcached")
    errors = validate_redb(body, cluster_exists=True)
    assert fields(errors) == {"spec.type"}
    assert {error.rule for error in errors} == {"not-implemented"}
    assert "spec.type: memcached is not implemented yet" in describe(errors)
    with pytest.raises(SpecInvalid):
        check_redb(body, cluster_exists=True)


def test_default_user_cannot_change_after_creation() -> None:
    errors = validate_redb(redb(defaultUser=False), redb(), cluster_exists=True)
    assert fields(errors) == {"spec.defaultUser"} and {e.rule for e in errors} == {"immutable"}


def test_tls_rules_name_the_field() -> None:
    errors = validate_redb(redb(tlsMode="replica_ssl"), cluster_exists=True)
    assert fields(errors) == {"spec.tlsMode"} and "Replica Of" in describe(errors)
    errors = validate_redb(redb(clientAuthenticationCertificates=["client-ca"]), cluster_exists=True)
    assert fields(errors) == {"spec.clientAuthenticationCertificates"}
    assert "tlsMode: enabled" in describe(errors)
    errors = validate_redb(redb(tlsMode="enabled", clientAuthenticationCertificates=["Bad_Name"]),
                           cluster_exists=True)
    assert fields(errors) == {"spec.clientAuthenticationCertificates[0]"}
    # fixed at creation: the accepted spec had another mode
    errors = validate_redb(redb(tlsMode="enabled"), redb(tlsMode="disabled"), cluster_exists=True)
    assert fields(errors) == {"spec.tlsMode"} and "cannot change after creation" in describe(errors)


@pytest.mark.parametrize(
    "spec",
    [
        {"tlsMode": "disabled"},
        {"defaultUser": True},
        {"type": "redis"},
        {"modulesList": []},
        {"rolesPermissions": []},
        {"isRof": False},
        {"rackAware": False},
        {"dataInternodeEncryption": False},
        {"backup": {}},
        {"activeActive": {"name": ""}},
    ],
)
def test_values_that_ask_for_nothing_pass_silently(spec: dict[str, Any]) -> None:
    assert validate_redb(redb(**spec), cluster_exists=True) == []
    assert redb_warnings(redb(**spec)) == []


def test_rec_refusals_and_harmless_values() -> None:
    refused = rec(
        certificates={"syncerCertificateSecretName": "my-syncer-cert"}, clusterCredentialSecretType="vault",
        ldap={"protocol": "my-ldap-protocol"},
    )
    errors = validate_rec(refused)
    assert fields(errors) == {
        "spec.certificates.syncerCertificateSecretName", "spec.clusterCredentialSecretType", "spec.ldap"}
    assert "my-ldap-protocol" not in describe(errors)  # a block's content is never repeated
    brought = {"proxyCertificateSecretName": "db-cert", "apiCertificateSecretName": "a",
               "cmCertificateSecretName": "c", "metricsExporterCertificateSecretName": "m"}
    assert validate_rec(rec(certificates=brought)) == []
    assert validate_rec(rec(clusterCredentialSecretType="kubernetes", activeActive={})) == []


def _refused(table: dict[str, SpecField]) -> list[SpecField]:
    return [field for field in table.values() if field.support == Support.REFUSED]


values = st.one_of(
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(
        st.text(min_size=1, max_size=5), st.one_of(st.booleans(), st.text(max_size=5)), max_size=2
    ),
)


@given(st.sampled_from(_refused(REDB_TABLE)), values)
def test_any_refused_redb_value_is_an_error_naming_the_field(field: SpecField, value: Any) -> None:
    errors = validate_redb(redb(**{field.path: value}), cluster_exists=True)
    refused = [e for e in errors if e.rule == "not-implemented"]
    if field.harmless(value):
        assert refused == []
    else:
        assert fields(refused) == {f"spec.{field.path}"}
        assert "not implemented yet" in refused[0].message


@given(st.sampled_from(_refused(REC_TABLE)), values)
def test_any_refused_rec_value_is_an_error_naming_the_field(field: SpecField, value: Any) -> None:
    errors = [e for e in validate_rec(rec(**{field.path: value})) if e.rule == "not-implemented"]
    assert fields(errors) == (set() if field.harmless(value) else {f"spec.{field.path}"})


@given(st.sampled_from(_refused(REDB_TABLE)), values, values)
def test_a_refused_value_accepted_before_is_kept_with_a_warning(
    field: SpecField, value: Any, other: Any
) -> None:
    """An update never fails because of what an older operator accepted; a new value still does."""
    old = redb(**{field.path: value})
    kept = [e for e in validate_redb(redb(**{field.path: value}), old, cluster_exists=True)
            if e.rule == "not-implemented"]
    assert kept == []
    if not field.harmless(value):
        (warning,) = [w for w in redb_warnings(redb(**{field.path: value}), old)]
        assert warning.field == f"spec.{field.path}" and "accepted before" in warning.message
    changed = [e for e in validate_redb(redb(**{field.path: other}), old, cluster_exists=True)
               if e.rule == "not-implemented"]
    assert fields(changed) == (set() if field.harmless(other) or other == value else {f"spec.{field.path}"})


names = st.from_regex(r"[a-z][A-Za-z0-9]{0,24}", fullmatch=True)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))


@given(names.filter(lambda name: name not in REDB_TABLE), scalars)
def test_any_redb_field_outside_the_contract_is_warned_about(name: str, value: Any) -> None:
    body = redb(**{name: value})
    assert validate_redb(body, cluster_exists=True) == []
    (warning,) = redb_warnings(body)
    assert (warning.field, warning.rule) == (f"spec.{name}", "unknown-field")
    assert str(warning).startswith(f"spec.{name}: unknown field")


@given(names.filter(lambda name: name not in REC_TABLE), scalars)
def test_any_rec_field_outside_the_contract_is_warned_about(name: str, value: Any) -> None:
    body = rec(**{name: value})
    assert validate_rec(body) == []
    assert [(w.field, w.rule) for w in rec_warnings(body)] == [(f"spec.{name}", "unknown-field")]


IGNORED = [(rec, rec_warnings, f) for f in REC_FIELDS if f.support == Support.IGNORED] + [
    (redb, redb_warnings, f) for f in REDB_FIELDS if f.support == Support.IGNORED
]


@given(st.sampled_from(IGNORED), scalars)
def test_every_ignored_field_is_warned_about_whatever_its_value(case: Any, value: Any) -> None:
    body, warn, field = case
    warnings = warn(body(**_nested(field.path, value)))
    assert [(w.field, w.rule) for w in warnings] == [(f"spec.{field.path}", "ignored")]
    assert field.reason in warnings[0].message


def _nested(path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    return {head: _nested(rest, value) if rest else value}


def test_the_misspelt_field_of_the_issue() -> None:
    (warning,) = redb_warnings(redb(memroySize="1GB"))
    assert str(warning).startswith("spec.memroySize: unknown field")


def _aliases(model: type[BaseModel], prefix: str = "") -> set[str]:
    return {prefix + (info.alias or name) for name, info in model.model_fields.items()}


def test_every_modelled_field_is_classified_once() -> None:
    for table in (REC_FIELDS, REDB_FIELDS):
        paths = [field.path for field in table]
        assert len(paths) == len(set(paths))
        assert all(field.reason for field in table if field.support != Support.IMPLEMENTED)
    rec_modelled = (_aliases(RedisEnterpriseClusterSpec) | _aliases(ServicesRiggerSpec, "servicesRiggerSpec.")
                    | _aliases(SlaveHaSpec, "slaveHA.") | _aliases(CertificatesSpec, "certificates."))
    assert rec_modelled <= set(REC_TABLE)
    assert _aliases(RedisEnterpriseDatabaseSpec) <= set(REDB_TABLE)
    # what the operator acts on is modelled (an implemented field the models do not know is a lie)
    assert {f.path for f in REC_FIELDS if f.support == Support.IMPLEMENTED} <= rec_modelled
    assert {f.path for f in REDB_FIELDS if f.support == Support.IMPLEMENTED} <= _aliases(
        RedisEnterpriseDatabaseSpec
    )


def test_docs_list_every_field_with_its_classification() -> None:
    text = DOCS.read_text()
    for kind, table in (("REC", REC_FIELDS), ("REDB", REDB_FIELDS)):
        section = text.split(f"### {kind} fields not acted on", 1)[1]
        section = section.split("\n## ", 1)[0].split("\n### ", 1)[0]
        rows = dict(re.findall(r"^\| `([^`]+)` \| (\w+)", section, flags=re.MULTILINE))
        expected = {f.path: f.support.value for f in table if f.support != Support.IMPLEMENTED}
        assert rows == expected, kind


def test_spec_valid_condition_and_events() -> None:
    body = redb(ossCluster=True)
    body["metadata"]["generation"] = 2
    message = describe(redb_warnings(body))
    status = {"conditions": updated_conditions(body, [spec_is_valid(message)], "t1")}
    (condition,) = status["conditions"]
    assert condition["status"] == "True" and condition["reason"] == "IgnoredFields"
    assert "spec.ossCluster" in condition["message"]
    assert spec_event({}, status) == ("IgnoredFields", condition["message"])
    assert spec_event(status, status) is None  # once per new message
    assert spec_is_valid("")[2] == "Valid"
    valid = {"conditions": updated_conditions(body, [spec_is_valid("")], "t2")}
    assert spec_event(status, valid) is None
    invalid = {"conditions": updated_conditions(body, [spec_is_invalid("spec.tlsMode: ...")], "t3")}
    assert spec_event(valid, invalid) == ("InvalidConfiguration", "spec.tlsMode: ...")
