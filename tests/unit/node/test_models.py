"""Validation of database bodies: every refusal names the field and the rule and changes nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recluster.node.engines import Engine, EngineTable
from recluster.node.errors import ApiError, from_validation_error
from recluster.node.records import ClusterRecord, ClusterState, NodeRecord
from recluster.node.request_models import BdbCreate, BdbUpdate, PolicyUpdate
from recluster.node.validation import new_bdb, updated_bdb
from recluster.node.views import policy_view

ENGINES = EngineTable.of([Engine("redis", 7, 0, 15, "/usr/bin/redis-server")])

pytestmark = pytest.mark.unit


def state(nodes: int = 3) -> ClusterState:
    st = ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"))
    for uid in range(1, nodes + 1):
        st.nodes[uid] = NodeRecord(uid=uid, name=f"n{uid}", addr=f"127.0.0.{uid}", api_port=1, ccs_port=2,
                                   sentinel_port=3, metrics_port=4)
    return st


def refusal(body: dict) -> ApiError:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as info:
        BdbCreate.model_validate(body)
    return from_validation_error(info.value)


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"memory_size": 1}, "name", "missing_db_name"),
    ({"name": "a"}, "memory_size", "missing_memory_size"),
    ({"name": "a b", "memory_size": 1}, "name", "invalid_parameter"),
    ({"name": "a", "memory_size": "100"}, "memory_size", "invalid_parameter"),
    ({"name": "a", "memory_size": 1, "port": 80}, "port", "port_unavailable"),
    ({"name": "a", "memory_size": 1, "eviction_policy": "most-lru"}, "eviction_policy",
     "eviction_policy_violation"),
    ({"name": "a", "memory_size": 1, "replication": "yes"}, "replication", "invalid_replication"),
    ({"name": "a", "memory_size": 1, "colour": "red"}, "colour", "unknown_field"),
    ({"name": "a", "memory_size": 1, "data_persistence": "sometimes"}, "data_persistence",
     "invalid_data_persistence"),
])
def test_bad_bodies_name_the_field(body: dict, field: str, code: str) -> None:  # type: ignore[type-arg]
    error = refusal(body)
    assert error.status == 400
    assert error.field == field
    assert error.error_code == code
    assert field in error.message


def test_password_never_echoed() -> None:
    error = refusal({"name": "a", "memory_size": 1, "authentication_redis_pass": 12345678})
    assert "12345678" not in error.message and error.field == "authentication_redis_pass"


def test_duplicate_name_and_port_refused() -> None:
    st = state()
    first = new_bdb(st, BdbCreate(name="a", memory_size=1, port=12000), "now", ENGINES)
    st.bdbs[first.uid] = first
    with pytest.raises(ApiError) as dup:
        new_bdb(st, BdbCreate(name="a", memory_size=1), "now", ENGINES)
    assert dup.value.status == 409 and dup.value.field == "name"
    with pytest.raises(ApiError) as port:
        new_bdb(st, BdbCreate(name="b", memory_size=1, port=12000), "now", ENGINES)
    assert port.value.status == 409 and port.value.field == "port"


def test_auto_port_skips_taken_ports() -> None:
    st = state()
    first = new_bdb(st, BdbCreate(name="a", memory_size=1), "now", ENGINES)
    st.bdbs[first.uid] = first
    second = new_bdb(st, BdbCreate(name="b", memory_size=1), "now", ENGINES)
    assert (first.port, second.port) == (10000, 10001)


def test_replication_on_one_node_and_sharding_refused() -> None:
    with pytest.raises(ApiError) as repl:
        new_bdb(state(1), BdbCreate(name="a", memory_size=1, replication=True), "now", ENGINES)
    assert repl.value.status == 406 and repl.value.field == "replication"
    with pytest.raises(ApiError) as shards:
        new_bdb(state(), BdbCreate(name="a", memory_size=1, shards_count=2), "now", ENGINES)
    assert shards.value.field == "shards_count" and shards.value.error_code == "invalid_sharding"


def test_update_keeps_name_and_port_and_marks_change_pending() -> None:
    st = state()
    bdb = new_bdb(st, BdbCreate(name="a", memory_size=1), "now", ENGINES)
    bdb.status = "active"
    st.bdbs[bdb.uid] = bdb
    changed = updated_bdb(st, bdb, BdbUpdate(memory_size=2), "later")
    assert changed.memory_size == 2 and changed.status == "active-change-pending"
    assert bdb.memory_size == 1, "the current record is not modified"
    with pytest.raises(ApiError) as rename:
        updated_bdb(st, bdb, BdbUpdate(name="b"), "later")
    assert rename.value.field == "name"


def test_replica_move_grace_follows_the_policy() -> None:
    cluster = state().cluster
    assert cluster.replica_move_grace_s(15.0) == 15.0  # never set: the daemon's --replica-move-grace
    assert policy_view(state(), 15.0) == {"slave_ha": True, "slave_ha_grace_period": 15}
    cluster.slave_ha_grace_period = 0
    assert cluster.replica_move_grace_s(15.0) == 0.0
    cluster.slave_ha = False
    assert cluster.replica_move_grace_s(15.0) is None  # replicas of a down node never move


@pytest.mark.parametrize(("body", "field"), [
    ({"slave_ha_grace_period": -1}, "slave_ha_grace_period"),
    ({"slave_ha_grace_period": 1.5}, "slave_ha_grace_period"),
    ({"slave_ha": "true"}, "slave_ha"),
    ({"auto_recovery": True}, "auto_recovery"),
])
def test_bad_policy_names_the_setting(body: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as info:
        PolicyUpdate.model_validate(body)
    assert from_validation_error(info.value).field == field
