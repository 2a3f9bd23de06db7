"""The engine upgrade's planner (node/engine_upgrade.py): whatever the leader sees, it never restarts
a master or anything while the master does not answer, fails over only to an upgraded replica in
sync, and, in a world where restarts and syncs complete, ends with every shard on the target; and
the state it writes (begin, advance)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recluster.node.engine_upgrade import ACTION, ShardSeen, Step, advance, begin, next_step
from recluster.node.reconcile import Observation, bdb_status
from recluster.node.records import (
    ActionRecord,
    BdbRecord,
    ClusterRecord,
    ClusterState,
    NodeRecord,
    ShardRecord,
)

pytestmark = pytest.mark.unit

OLD, NEW = "7.0", "8.0"
versions = st.sampled_from([OLD, NEW])

shard_seen = st.builds(
    ShardSeen, uid=st.integers(1, 6), role=st.sampled_from(["master", "slave"]), engine=versions,
    running=st.one_of(st.none(), versions), observed_role=st.sampled_from([None, "master", "slave"]),
    in_sync=st.booleans(), node_up=st.booleans())


def _unique(shards: list[ShardSeen]) -> list[ShardSeen]:
    return list({s.uid: s for s in shards}.values())


@settings(max_examples=500)
@given(st.lists(shard_seen, min_size=0, max_size=4).map(_unique))
def test_whatever_it_sees_it_never_endangers_the_data(shards: list[ShardSeen]) -> None:
    step = next_step(NEW, shards)
    by_uid = {s.uid: s for s in shards}
    assert len(step.restart) <= 1  # one shard at a time
    for uid in step.restart:
        shard = by_uid[uid]
        # never the recorded master, and only while the recorded master answers as one
        assert shard.role != "master"
        masters = [s for s in shards if s.role == "master"]
        assert len(masters) == 1 and masters[0].observed_role == "master" and masters[0].node_up
        assert shard.engine != NEW and shard.node_up
        # nothing else is restarting or catching up
        assert all(s.running == NEW for s in shards if s.engine == NEW)
    if step.failover:
        assert any(s.role != "master" and s.engine == NEW and s.running == NEW and s.in_sync
                   and s.observed_role == "slave" for s in shards)
        # only once every replica runs the target in sync: Sentinel picks among them
        assert all(s.engine == NEW and s.running == NEW and s.in_sync for s in shards if s.role != "master")
    if step.done:
        assert shards and all(s.engine == NEW and s.running == NEW for s in shards)
        assert all(s.in_sync for s in shards if s.role != "master")
    assert step.restart or step.failover or step.done or step.message


@dataclasses.dataclass
class World:
    """Two or three shards, one master; a restart completes and a replica syncs when the world's
    turn says so; a replica syncs only from a master of its version or older (RDB formats)."""

    shards: dict[int, dict[str, object]]

    def seen(self) -> list[ShardSeen]:
        return [ShardSeen(uid, str(s["role"]), str(s["engine"]), s["running"],  # type: ignore[arg-type]
                          None if s["running"] is None else str(s["role"]), bool(s["in_sync"]), True)
                for uid, s in sorted(self.shards.items())]

    def master(self) -> dict[str, object]:
        return next(s for s in self.shards.values() if s["role"] == "master")

    def apply(self, step: Step) -> None:
        for uid in step.restart:
            shard = self.shards[uid]
            assert shard["role"] != "master"
            shard.update(engine=NEW, running=None, in_sync=False)
        if step.failover:
            ready = [s for s in self.shards.values() if s["role"] == "slave" and s["in_sync"]]
            old, new = self.master(), ready[0]
            assert new["running"] == NEW
            old.update(role="slave", in_sync=False)
            new.update(role="master", in_sync=False)

    def turn(self, event: int) -> None:
        """One thing the world does: a restart finishes, or a replica syncs (if it can)."""
        candidates = sorted(self.shards)
        shard = self.shards[candidates[event % len(candidates)]]
        if shard["running"] is None:
            shard["running"] = shard["engine"]
        elif shard["role"] == "slave" and not shard["in_sync"]:
            shard["in_sync"] = str(shard["running"]) >= str(self.master()["running"])


@settings(max_examples=300)
@given(replicas=st.integers(1, 2), events=st.lists(st.integers(0, 5), min_size=0, max_size=200))
def test_in_a_world_that_completes_restarts_it_finishes_on_the_target(replicas: int,
                                                                      events: list[int]) -> None:
    world = World({1: {"role": "master", "engine": OLD, "running": OLD, "in_sync": False}} | {
        uid: {"role": "slave", "engine": OLD, "running": OLD, "in_sync": True}
        for uid in range(2, 2 + replicas)})
    queue = list(events)
    for _ in range(400):
        step = next_step(NEW, world.seen())
        if step.done:
            break
        world.apply(step)
        # the world moves: the drawn events first, then fairly through every shard
        world.turn(queue.pop(0) if queue else _ % 7)
    else:
        pytest.fail(f"not done: {next_step(NEW, world.seen())}")
    assert all(s["engine"] == NEW and s["running"] == NEW for s in world.shards.values())
    assert sum(s["role"] == "master" for s in world.shards.values()) == 1


def test_the_order_replica_failover_old_master() -> None:
    master = ShardSeen(1, "master", OLD, OLD, "master", False, True)
    replica = ShardSeen(2, "slave", OLD, OLD, "slave", True, True)
    assert next_step(NEW, [master, replica]).restart == (2,)
    restarting = dataclasses.replace(replica, engine=NEW, running=None, observed_role=None, in_sync=False)
    assert next_step(NEW, [master, restarting]).message == "waiting for shard 2 to run 8.0"
    syncing = dataclasses.replace(restarting, running=NEW, observed_role="slave")
    assert "to sync with the master" in next_step(NEW, [master, syncing]).message
    ready = dataclasses.replace(syncing, in_sync=True)
    assert next_step(NEW, [master, ready]).failover
    # Sentinel promoted it; until the roles are recorded, nothing else happens
    promoted = dataclasses.replace(ready, observed_role="master", in_sync=False)
    waiting = next_step(NEW, [master, promoted])
    assert not waiting.restart and not waiting.failover
    promoted = dataclasses.replace(promoted, role="master")
    # recorded: the old master is restarted at once, even while it still answers as master (Sentinel
    # converts it seconds later), as a 7.0 replica of 8.0 it could never sync
    demoting = dataclasses.replace(master, role="slave")
    assert next_step(NEW, [demoting, promoted]).restart == (1,)
    done = dataclasses.replace(demoting, engine=NEW, running=NEW, observed_role="slave", in_sync=True)
    assert next_step(NEW, [done, promoted]).done


def _state() -> tuple[ClusterState, BdbRecord]:
    state = ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"))
    for uid in (1, 2):
        state.nodes[uid] = NodeRecord(uid=uid, name=f"n{uid}", addr=f"127.0.0.{uid}", api_port=9443,
                                      ccs_port=3355, sentinel_port=8001, metrics_port=8070)
    bdb = BdbRecord(uid=1, name="db", memory_size=1, port=12000, replication=True,
                    data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                    eviction_policy="noeviction", redis_version=OLD, status="active")
    state.bdbs[1] = bdb
    state.shards[1] = ShardRecord(uid=1, bdb_uid=1, node_uid=1, role="master", status="active")
    state.shards[2] = ShardRecord(uid=2, bdb_uid=1, node_uid=2, role="slave", status="active")
    return state, bdb


def _obs(versions: dict[int, str], roles: dict[int, str], in_sync: set[int]) -> Observation:
    return Observation(now=0.0, up={1, 2}, evacuate_down=set(), sentinel_masters={},
                       shard_alive={1: True, 2: True}, shard_in_sync=in_sync,
                       shard_config_ok={1: True, 2: True}, port_closed_everywhere={},
                       shard_version=versions, shard_role=roles)


def test_begin_and_advance_write_the_steps_into_the_state() -> None:
    state, before = _state()
    after = before.model_copy(update={"redis_version": NEW})
    action = ActionRecord(action_uid="a1", name="update_bdb")
    state.actions["a1"] = action
    after.action_uid = "a1"
    begin(state, before, after, action)
    state.bdbs[1] = after
    assert (after.upgrade_from, after.status, action.name) == (OLD, "active-change-pending", ACTION)
    assert [s.engine for s in state.shards.values()] == [OLD, OLD]  # pinned: nothing restarts yet

    state.shards[1].min_replicas_to_write = 1
    changes, failovers = advance(state, _obs({1: OLD, 2: OLD}, {1: "master", 2: "slave"}, {2}))
    assert state.shards[2].engine == NEW and state.shards[1].engine == OLD and not failovers
    assert state.shards[1].min_replicas_to_write == 0  # the master keeps taking writes meanwhile
    assert state.shards[1].running_version == OLD and "restarting replica shard 2" in action.step
    # a change of settings alone would end here: the upgrade keeps the database pending
    assert bdb_status(state, _obs({}, {}, {2})) == [] and after.status == "active-change-pending"

    changes, failovers = advance(state, _obs({1: OLD, 2: NEW}, {1: "master", 2: "slave"}, {2}))
    assert failovers == [1] and state.shards[2].running_version == NEW
    state.shards[1].role, state.shards[2].role = "slave", "master"  # sync_roles after the failover
    advance(state, _obs({1: OLD, 2: NEW}, {1: "slave", 2: "master"}, set()))
    assert state.shards[1].engine == NEW and action.progress == 50
    changes, failovers = advance(state, _obs({1: NEW, 2: NEW}, {1: "slave", 2: "master"}, {1}))
    assert after.status == "active" and after.upgrade_from == "" and after.redis_version == NEW
    assert [s.engine for s in state.shards.values()] == ["", ""]
    assert (action.status, action.progress) == ("completed", 100)
    assert f"bdb 1 upgraded from {OLD} to {NEW}" in changes
