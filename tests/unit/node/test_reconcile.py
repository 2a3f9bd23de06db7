"""The leader's pure decisions: roles follow Sentinel, min-replicas-to-write follows the replica's
health, node removal completes only when the node holds nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.reconcile import Observation, min_replicas, progress_removals, settled, sync_roles
from recluster.node.records import (
    ActionRecord,
    BdbRecord,
    ClusterRecord,
    ClusterState,
    NodeRecord,
    ShardRecord,
)

pytestmark = pytest.mark.unit


def cluster() -> ClusterState:
    state = ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"))
    for uid in (1, 2, 3):
        state.nodes[uid] = NodeRecord(uid=uid, name=f"n{uid}", addr=f"127.0.0.{uid}", api_port=1,
                                      ccs_port=2, sentinel_port=3, metrics_port=4)
    state.bdbs[1] = BdbRecord(uid=1, name="db", memory_size=1, port=10000, replication=True,
                              data_persistence="disabled", aof_policy="appendfsync-every-sec",
                              snapshot_policy=[], eviction_policy="noeviction", status="active")
    state.shards[1] = ShardRecord(uid=1, bdb_uid=1, node_uid=1, role="master")
    state.shards[2] = ShardRecord(uid=2, bdb_uid=1, node_uid=2, role="slave")
    return state


def observe(**kwargs: object) -> Observation:
    base: dict[str, object] = dict(now=0.0, up={1, 2, 3}, evacuate_down=set(), sentinel_masters={},
                                   shard_alive={}, shard_in_sync=set(), shard_config_ok={},
                                   port_closed_everywhere={})
    base.update(kwargs)
    return Observation(**base)  # type: ignore[arg-type]


def test_roles_follow_the_master_sentinel_reports() -> None:
    state = cluster()
    changes = sync_roles(state, observe(sentinel_masters={"db": ("n2", 10000)}))
    assert changes and state.shards[2].role == "master" and state.shards[1].role == "slave"
    assert sync_roles(state, observe(sentinel_masters={"db": ("n2", 10000)})) == []


def test_master_requires_a_replica_only_while_one_is_healthy() -> None:
    state = cluster()
    min_replicas(state, observe(shard_in_sync={2}))
    assert state.shards[1].min_replicas_to_write == 1 and state.shards[2].min_replicas_to_write == 0
    min_replicas(state, observe(up={1, 3}, shard_in_sync={2}))  # the replica's node is down
    assert state.shards[1].min_replicas_to_write == 0


def test_an_old_master_stays_fenced_after_sentinel_promoted_its_replica() -> None:
    """Planned failover (a node's SIGTERM hand-off): Sentinel promoted shard 2; shard 1 is still a
    running master until it is demoted or stopped. It must keep refusing writes without a replica,
    or the writes it takes meanwhile are acknowledged and lost."""
    state = cluster()
    min_replicas(state, observe(shard_in_sync={2}))
    assert state.shards[1].min_replicas_to_write == 1
    sync_roles(state, observe(sentinel_masters={"db": ("n2", 10000)}))
    changes = min_replicas(state, observe(shard_in_sync=set()))  # 2 is master now, 1 not in sync
    assert state.shards[1].role == "slave" and state.shards[1].min_replicas_to_write == 1
    assert state.shards[2].min_replicas_to_write == 0  # the new master stays writable alone
    assert changes == []


def test_an_old_master_seen_replicating_is_unfenced_so_its_own_promotion_takes_writes() -> None:
    """Shard 1 was master, shard 2 was promoted; 1 now replicates from 2 (in sync): it no longer
    needs the fence, and kept at 1 a later promotion of it (2's node crashing) would refuse every
    write (NOREPLICAS) until the leader noticed."""
    state = cluster()
    min_replicas(state, observe(shard_in_sync={2}))
    sync_roles(state, observe(sentinel_masters={"db": ("n2", 10000)}))
    changes = min_replicas(state, observe(shard_in_sync={1}))
    assert state.shards[1].min_replicas_to_write == 0
    assert state.shards[2].min_replicas_to_write == 1  # the new master has its in-sync replica
    assert "shard 1 min-replicas-to-write 0 (a replica in sync)" in changes


@given(
    roles=st.lists(st.sampled_from(["master", "slave"]), min_size=1, max_size=4),
    before=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    up=st.sets(st.integers(1, 3)),
    in_sync=st.sets(st.integers(1, 4)),
    replication=st.booleans(),
)
def test_min_replicas_follows_the_master_s_replica_and_unfences_only_followers(
    roles: list[str], before: list[int], up: set[int], in_sync: set[int], replication: bool
) -> None:
    state = cluster()
    state.bdbs[1].replication = replication
    state.shards.clear()
    for uid, role in enumerate(roles, start=1):
        state.shards[uid] = ShardRecord(uid=uid, bdb_uid=1, node_uid=(uid - 1) % 3 + 1, role=role,
                                        min_replicas_to_write=before[uid - 1])
    min_replicas(state, observe(up=up, shard_in_sync=in_sync))
    for uid, role in enumerate(roles, start=1):
        after = state.shards[uid].min_replicas_to_write
        if role != "master":
            # never raised; lowered to 0 only once seen replicating (fenced by its master then)
            assert after == (0 if uid in in_sync else before[uid - 1])
        else:
            healthy = any(r != "master" and (u - 1) % 3 + 1 in up and u in in_sync
                          for u, r in enumerate(roles, start=1))
            assert after == (1 if replication and healthy else 0)


def test_removal_completes_only_when_the_node_is_empty_and_hands_over_the_leader_role() -> None:
    state = cluster()
    state.nodes[2].status = "decommissioning"
    state.actions["a"] = ActionRecord(action_uid="a", name="remove_node", node_uid=2, status="running",
                                      initial_shards=1)
    progress_removals(state, leader_uid=1)
    assert 2 in state.nodes and state.actions["a"].status == "running"
    del state.shards[2]
    progress_removals(state, leader_uid=1)
    assert 2 not in state.nodes and state.actions["a"].status == "completed"

    state.nodes[1].status = "decommissioning"
    del state.shards[1]
    state.actions["b"] = ActionRecord(action_uid="b", name="remove_node", node_uid=1, status="running")
    _, handover = progress_removals(state, leader_uid=1)
    assert handover and 1 in state.nodes, "the leader hands the CCS over before its record goes"


def test_a_node_whose_name_resolves_to_a_new_address_is_recorded_there() -> None:
    from recluster.node.reconcile import sync_status

    state = cluster()
    changes = sync_status(state, observe(resolved_addr={2: "127.0.0.99"}))
    assert state.nodes[2].addr == "127.0.0.99" and any("moved" in c for c in changes)


@pytest.mark.parametrize("replication", [True, False])
def test_a_new_database_is_active_only_once_its_failover_is_armed(replication: bool) -> None:
    from recluster.node.reconcile import bdb_status

    state = cluster()
    state.bdbs[1].status, state.bdbs[1].replication = "pending", replication
    running = observe(shard_alive={1: True, 2: True})
    bdb_status(state, running)
    assert state.bdbs[1].status == ("pending" if replication else "active")
    bdb_status(state, observe(shard_alive={1: True, 2: True}, failover_armed={1}))
    assert state.bdbs[1].status == "active"


def test_a_database_whose_sentinels_never_meet_fails_with_that_reason() -> None:
    from recluster.node.reconcile import CREATION_TIMEOUT_S, bdb_status

    state = cluster()
    state.bdbs[1].status, state.bdbs[1].action_uid = "pending", "a"
    state.actions["a"] = ActionRecord(action_uid="a", name="create_bdb", status="running")
    changes = bdb_status(state, observe(now=CREATION_TIMEOUT_S + 1, pending_since={1: 0.0},
                                        shard_alive={1: True, 2: True}))
    assert state.bdbs[1].status == "creation-failed"
    assert "sentinels" in changes[0] and "sentinels" in state.actions["a"].error_message


RUNNING = ActionRecord(action_uid="a", name="remove_node", status="running")


def healthy() -> Observation:
    return observe(shard_alive={1: True, 2: True}, shard_in_sync={2}, shard_config_ok={1: True, 2: True})


def test_a_healthy_cluster_is_settled() -> None:
    assert settled(cluster(), healthy())


@pytest.mark.parametrize(
    "unsettle",
    [
        pytest.param(lambda s, o: o.up.discard(3), id="a node down"),
        pytest.param(lambda s, o: setattr(s.nodes[3], "status", "decommissioning"), id="a node leaving"),
        pytest.param(lambda s, o: setattr(s.bdbs[1], "status", "pending"), id="a database pending"),
        pytest.param(lambda s, o: o.shard_alive.update({2: False}), id="a shard not answering"),
        pytest.param(lambda s, o: o.shard_alive.pop(1), id="a shard not probed"),
        pytest.param(lambda s, o: o.shard_config_ok.update({1: False}), id="a shard on old settings"),
        pytest.param(lambda s, o: o.shard_in_sync.clear(), id="a replica out of sync"),
        pytest.param(lambda s, o: s.actions.update({"a": RUNNING}), id="an action running"),
    ],
)
def test_anything_to_follow_closely_is_not_settled(unsettle: object) -> None:
    state, obs = cluster(), healthy()
    unsettle(state, obs)  # type: ignore[operator]
    assert not settled(state, obs)
