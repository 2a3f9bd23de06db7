"""The catalog: shipped plans, plans from configuration (errors name the field), stable ids, the
parameter schema and its validator, plan -> bdb settings, database names."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.access import user_name_problem
from recluster.broker.catalog import (
    DEFAULT_REDIS_ACL,
    EVICTION_VALUES,
    PERSISTENCE_VALUES,
    CatalogError,
    bdb_settings,
    binding_user_name,
    build_catalog,
    database_name,
    validate_parameters,
)

pytestmark = pytest.mark.unit

SCHEMA = build_catalog(None).plans[0].instance_schema()


def test_shipped_defaults_small_medium_large() -> None:
    catalog = build_catalog(None, cluster="prod", namespace="data")
    assert [p.name for p in catalog.plans] == ["small", "medium", "large"]
    small, medium, large = catalog.plans
    assert (small.memory_size, small.replication, small.persistence) == (100 * 1024**2, False, "disabled")
    assert medium.replication and medium.persistence == "aofEverySecond"
    assert large.memory_size == 4 * 1024**3
    service = catalog.document()["services"][0]
    assert service["name"] == "redis-prod"
    assert service["bindable"] and service["plan_updateable"]
    assert service["instances_retrievable"] and service["bindings_retrievable"]
    plan = service["plans"][0]
    create = plan["schemas"]["service_instance"]["create"]["parameters"]
    assert create["$schema"].startswith("http://json-schema.org/")
    assert create["additionalProperties"] is False


def test_ids_are_stable_unique_and_per_cluster() -> None:
    a, b = build_catalog(None, "rec", "ns"), build_catalog(None, "rec", "ns")
    assert a == b
    other = build_catalog(None, "rec", "other-ns")
    assert a.service_id != other.service_id
    ids = [a.service_id, *(p.id for p in a.plans), *(p.id for p in other.plans)]
    assert len(set(ids)) == len(ids)


def test_plans_from_configuration() -> None:
    catalog = build_catalog({"service": {"name": "cache", "id": "svc-1"},
                             "plans": [{"name": "tiny", "id": "p-1", "memory": "32MB", "replication": True,
                                        "persistence": "snapshotEvery1Hour", "free": False,
                                        "maintenance_version": "1.2.0"}]})
    assert catalog.service_id == "svc-1" and catalog.service_name == "cache"
    (plan,) = catalog.plans
    assert plan.id == "p-1" and plan.memory_size == 32 * 1024**2 and not plan.free
    assert plan.catalog_entry()["maintenance_info"] == {"version": "1.2.0"}
    assert catalog.plan("p-1") is plan and catalog.plan("nope") is None


@pytest.mark.parametrize(("config", "field"), [
    ({"plans": []}, "'plans'"),
    ({"plan": []}, "'plan'"),
    ({"plans": [{"name": "a b", "memory": "1GB"}]}, "'plans[0].name'"),
    ({"plans": [{"name": "a"}]}, "'plans[0].memory'"),
    ({"plans": [{"name": "a", "memory": "lots"}]}, "'plans[0].memory'"),
    ({"plans": [{"name": "a", "memory": "1GB", "persistence": "sometimes"}]}, "'plans[0].persistence'"),
    ({"plans": [{"name": "a", "memory": "1GB", "replication": "yes"}]}, "'plans[0].replication'"),
    ({"plans": [{"name": "a", "memory": "1GB", "shards": 2}]}, "'plans[0].shards'"),
    ({"plans": [{"name": "a", "memory": "1GB"}, {"name": "a", "memory": "2GB"}]}, "'plans[1].name'"),
    ({"plans": [{"name": "a", "id": "x", "memory": "1GB"}, {"name": "b", "id": "x", "memory": "1GB"}]},
     "'plans[1].id'"),
    ({"service": {"name": "has space"}}, "'service.name'"),
    ({"service": {"colour": "red"}}, "'service.colour'"),
    ({"plans": [{"name": "a", "memory": "1GB", "redis_acl": ""}]}, "'plans[0].redis_acl'"),
    ({"plans": [{"name": "a", "memory": "1GB", "redis_acl": 2}]}, "'plans[0].redis_acl'"),
    ({"plans": [{"name": "a", "memory": "1GB", "redis_acl": "x" * 65}]}, "'plans[0].redis_acl'"),
])
def test_bad_configuration_names_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(CatalogError, match=re.escape(field)):
        build_catalog(config)


@given(st.sampled_from(EVICTION_VALUES), st.sampled_from(PERSISTENCE_VALUES))
def test_every_allowed_value_validates(eviction: str, persistence: str) -> None:
    assert validate_parameters({"eviction_policy": eviction, "persistence": persistence}, SCHEMA) == []


@given(st.text(min_size=1, max_size=30).filter(lambda v: v not in EVICTION_VALUES))
def test_values_outside_the_enum_are_refused_without_echo(value: str) -> None:
    # the message is the same whatever the value: it names the field and the rule only
    assert validate_parameters({"eviction_policy": value}, SCHEMA) == [
        f"'parameters.eviction_policy': must be one of {', '.join(EVICTION_VALUES)}"]


@given(st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=12), st.integers(), min_size=1))
def test_unknown_or_mistyped_parameters_are_refused(params: dict[str, int]) -> None:
    assert validate_parameters(params, SCHEMA) != []


def test_parameters_must_be_an_object_or_absent() -> None:
    assert validate_parameters(None, SCHEMA) == []
    assert validate_parameters({}, SCHEMA) == []
    assert validate_parameters(["x"], SCHEMA) == ["'parameters': must be an object"]


def test_bdb_settings_from_plan_and_parameters() -> None:
    small, medium, _ = build_catalog(None).plans
    assert bdb_settings(small, None) == {"memory_size": 100 * 1024**2, "replication": False,
                                         "eviction_policy": "volatile-lru", "data_persistence": "disabled",
                                         "snapshot_policy": []}
    settings = bdb_settings(medium, {"eviction_policy": "noeviction", "persistence": "aofAlways"})
    assert settings["replication"] is True and settings["eviction_policy"] == "noeviction"
    assert settings["data_persistence"] == "aof" and settings["aof_policy"] == "appendfsync-always"


@pytest.mark.parametrize(("persistence", "expected"), [
    ("disabled", {"data_persistence": "disabled", "snapshot_policy": []}),
    ("aofEverySecond",
     {"data_persistence": "aof", "aof_policy": "appendfsync-every-sec", "snapshot_policy": []}),
    ("snapshotEvery6Hour",
     {"data_persistence": "snapshot", "snapshot_policy": [{"secs": 21600, "writes": 1}]}),
])
def test_persistence_vocabulary(persistence: str, expected: dict[str, object]) -> None:
    """The REDB vocabulary (api.redb.persistence_fields, as the operator maps it), and a snapshot rule
    of an earlier plan cleared."""
    small = build_catalog(None).plans[0]
    settings = bdb_settings(small, {"persistence": persistence})
    persistence_keys = ("data_persistence", "aof_policy", "snapshot_policy")
    assert {k: v for k, v in settings.items() if k in persistence_keys} == expected


@given(st.text(min_size=1, max_size=200))
def test_database_names_fit_the_cluster_and_sentinel(instance_id: str) -> None:
    name = database_name(instance_id)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,63}", name)
    assert name == database_name(instance_id)
    assert name != "ccs"


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_distinct_instances_get_distinct_databases(a: str, b: str) -> None:
    if a != b:
        assert database_name(a) != database_name(b)


def test_a_plan_says_which_redis_acl_its_bindings_get() -> None:
    """Every binding gets a user of its own with the plan's Redis ACL on the database: by default
    Redis Enterprise's predefined 'Full Access'; a read-only plan names 'Read Only'."""
    assert {p.redis_acl for p in build_catalog(None).plans} == {DEFAULT_REDIS_ACL} == {"Full Access"}
    catalog = build_catalog({"plans": [{"name": "reader", "memory": "32MB", "redis_acl": " Read Only "},
                                       {"name": "writer", "memory": "32MB"}]})
    reader, writer = catalog.plans
    assert (reader.redis_acl, writer.redis_acl) == ("Read Only", "Full Access")
    entry = reader.catalog_entry()
    assert entry["metadata"]["redis_acl"] == "Read Only"
    assert any("Read Only" in bullet for bullet in entry["metadata"]["bullets"])


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=200))
def test_binding_user_names_are_names_the_cluster_accepts(instance_id: str, binding_id: str) -> None:
    """Always the same for the same binding (a retry or a restart finds its user), a valid name for
    a user and a role on the cluster, never one of its reserved names."""
    name = binding_user_name(instance_id, binding_id)
    assert name == binding_user_name(instance_id, binding_id)
    assert user_name_problem(name) is None and name.startswith("osb-")


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_distinct_bindings_get_distinct_users(instance_id: str, a: str, b: str) -> None:
    if a != b:
        assert binding_user_name(instance_id, a).lower() != binding_user_name(instance_id, b).lower()
    assert binding_user_name(instance_id, a) != binding_user_name(instance_id + "x", a)
