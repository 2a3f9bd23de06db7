"""An older database's move to the per-job logins: the users first, the logins only after, never a
database whose default user is off, and each step only once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.login_migration import (
    give_job_users,
    has_job_users,
    needing_job_users,
    switch_logins,
    waiting_to_switch,
)
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState
from recluster.node.shard_users import internal_users

pytestmark = pytest.mark.unit


def _bdb(uid: int, default_user: bool = True, internal_password: str = "",
         status: str = "active") -> BdbRecord:
    return BdbRecord(uid=uid, name=f"db{uid}", memory_size=100 << 20, port=12000 + uid, replication=True,
                     data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                     eviction_policy="volatile-lru", authentication_redis_pass=f"pw{uid}",
                     default_user=default_user, internal_password=internal_password,
                     status=status)  # type: ignore[arg-type]


def _state(*bdbs: BdbRecord) -> ClusterState:
    return ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"),
                        bdbs={b.uid: b for b in bdbs})


def test_only_active_older_databases_with_the_default_user_on_move() -> None:
    state = _state(_bdb(1), _bdb(2, default_user=False), _bdb(3, internal_password="x"),
                   _bdb(4, status="pending"))
    assert needing_job_users(state) == [1]


def test_the_users_come_first_and_the_logins_follow() -> None:
    state = _state(_bdb(1))
    assert give_job_users(state, {1: "new-internal"})
    bdb = state.bdbs[1]
    # step 1: the shards get the users, the connections keep the default user
    assert {u.name for u in internal_users(bdb)} >= {"recluster-internal", "recluster-replication",
                                                      "recluster-sentinel"}
    assert bdb.login("sentinel") == (None, "pw1") and bdb.login("replication") == (None, "pw1")
    assert waiting_to_switch(state) == [bdb] and needing_job_users(state) == []
    assert give_job_users(state, {1: "another"}) == [] and bdb.internal_password == "new-internal"
    # step 2
    assert switch_logins(state, 1)
    assert bdb.login("sentinel") == ("recluster-sentinel", "new-internal")
    assert waiting_to_switch(state) == [] and switch_logins(state, 1) == []


def test_a_database_without_its_default_user_is_left_alone() -> None:
    state = _state(_bdb(1, default_user=False))
    assert give_job_users(state, {1: "x"}) == [] and not state.bdbs[1].internal_password


@given(names=st.lists(st.sampled_from(["default", "recluster-internal", "recluster-replication",
                                       "recluster-sentinel", "recluster-import", "app"]), unique=True))
def test_the_logins_move_only_when_a_shard_lists_every_job_user(names: list[str]) -> None:
    assert has_job_users(names) == {"recluster-internal", "recluster-replication", "recluster-sentinel",
                                    "recluster-import"}.issubset(names)
