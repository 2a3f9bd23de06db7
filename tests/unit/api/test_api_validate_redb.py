"""The REDB rules of the one validator."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api import FieldError, SpecInvalid, check_redb, validate_redb

pytestmark = pytest.mark.unit


def redb(name: str = "mydb", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def rules(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in errors}


def test_minimal_redb_is_valid() -> None:
    assert validate_redb(redb(), cluster_exists=True) == []
    assert check_redb(redb(redisEnterpriseCluster={"name": "rec"}), cluster_exists=True).cluster_name == "rec"


def test_missing_cluster() -> None:
    errors = validate_redb(redb(redisEnterpriseCluster={"name": "nope"}), cluster_exists=False)
    assert rules(errors) == {("spec.redisEnterpriseCluster.name", "cluster-exists")}
    assert "'nope'" in errors[0].message


@pytest.mark.parametrize("size", ["100MB", "0.1GB", "1GB", "1gb", "512Mi", "100000000000"])
def test_memory_sizes_accepted(size: str) -> None:
    assert validate_redb(redb(memorySize=size), cluster_exists=True) == []


@pytest.mark.parametrize(
    ("size", "rule"), [("99MB", "memory-size"), ("1MB", "memory-size"), ("lots", "schema")]
)
def test_memory_sizes_refused(size: str, rule: str) -> None:
    assert rules(validate_redb(redb(memorySize=size), cluster_exists=True)) == {("spec.memorySize", rule)}


@given(st.integers(min_value=2, max_value=1000))
def test_only_one_shard(shards: int) -> None:
    errors = validate_redb(redb(shardCount=shards), cluster_exists=True)
    assert rules(errors) == {("spec.shardCount", "shard-count")}


@pytest.mark.parametrize(
    ("field", "value"),
    [("persistence", "aofSometimes"), ("evictionPolicy", "allkeys-fifo"), ("replication", "maybe")],
)
def test_enums(field: str, value: str) -> None:
    assert rules(validate_redb(redb(**{field: value}), cluster_exists=True)) == {(f"spec.{field}", "schema")}


@given(
    st.sampled_from(
        [
            "disabled",
            "aofEverySecond",
            "aofAlways",
            "snapshotEvery1Hour",
            "snapshotEvery6Hour",
            "snapshotEvery12Hour",
        ]
    ),
    st.sampled_from(
        [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]
    ),
)
def test_every_persistence_and_eviction_policy_is_accepted(persistence: str, policy: str) -> None:
    assert validate_redb(redb(persistence=persistence, evictionPolicy=policy), cluster_exists=True) == []


@given(st.integers(min_value=10000, max_value=19999), st.sets(st.integers(min_value=10000, max_value=19999)))
def test_ports_in_range_are_valid_unless_taken(port: int, in_use: set[int]) -> None:
    errors = validate_redb(redb(databasePort=port), cluster_exists=True, ports_in_use=in_use)
    assert rules(errors) == ({("spec.databasePort", "port-unique")} if port in in_use else set())


@given(st.integers(min_value=-10, max_value=70000).filter(lambda p: not 10000 <= p <= 19999))
def test_ports_out_of_range_are_refused(port: int) -> None:
    errors = validate_redb(redb(databasePort=port), cluster_exists=True)
    assert rules(errors) == {("spec.databasePort", "port-range")}


def test_port_is_immutable() -> None:
    old = redb(databasePort=12000)
    assert rules(validate_redb(redb(databasePort=12001), old, cluster_exists=True)) == {
        ("spec.databasePort", "immutable")
    }
    assert validate_redb(redb(databasePort=12000), old, cluster_exists=True) == []
    assert validate_redb(redb(), old, cluster_exists=True) == []  # the assigned port stays


def test_assigned_port_counts_as_set() -> None:
    old = redb(status={"internalEndpoints": [{"host": "mydb.ns.svc", "port": 12000}]})
    assert rules(validate_redb(redb(databasePort=13000), old, cluster_exists=True)) == {
        ("spec.databasePort", "immutable")
    }
    assert validate_redb(redb(databasePort=12000), old, cluster_exists=True) == []


def test_service_port_and_secret_name() -> None:
    errors = validate_redb(
        redb(databaseServicePort=70000, databaseSecretName="Bad_Name"), cluster_exists=True
    )
    assert rules(errors) == {("spec.databaseServicePort", "port-range"), ("spec.databaseSecretName", "name")}


@pytest.mark.parametrize("name", ["MyDB", "db_1", "a" * 50])
def test_redb_name(name: str) -> None:
    assert rules(validate_redb(redb(name=name), cluster_exists=True)) == {("metadata.name", "name")}


def test_check_redb_raises() -> None:
    with pytest.raises(SpecInvalid):
        check_redb(redb(shardCount=3), cluster_exists=True)


def test_a_malformed_status_never_refuses_a_spec() -> None:
    assert validate_redb(redb(status={"shardStatuses": "garbage"}), cluster_exists=True) == []
