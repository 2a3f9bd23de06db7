"""Shard placement: masters spread, a master and its replica never share a node, repair moves
replicas off leaving or dead nodes and fails masters over before their node goes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.placement import PlacedShard, PlacementError, nodes_to_evacuate, place_new_bdb, repair

pytestmark = pytest.mark.unit


def _apply(shards: list[PlacedShard], bdb_uid: int, placed: list) -> list[PlacedShard]:  # type: ignore[type-arg]
    next_uid = max((s.uid for s in shards), default=0) + 1
    out = list(shards)
    for i, add in enumerate(placed):
        out.append(PlacedShard(next_uid + i, bdb_uid, add.node_uid, add.role))
    return out


@given(nodes=st.integers(min_value=2, max_value=7), dbs=st.lists(st.booleans(), min_size=1, max_size=20))
def test_master_and_replica_never_share_a_node_and_masters_spread(nodes: int, dbs: list[bool]) -> None:
    shards: list[PlacedShard] = []
    for bdb_uid, replication in enumerate(dbs, start=1):
        placed = place_new_bdb(bdb_uid, range(1, nodes + 1), shards, replication)
        assert len(placed) == (2 if replication else 1)
        assert len({p.node_uid for p in placed}) == len(placed)
        shards = _apply(shards, bdb_uid, placed)
    masters = [sum(1 for s in shards if s.role == "master" and s.node_uid == n) for n in range(1, nodes + 1)]
    assert max(masters) - min(masters) <= 1


def test_replication_needs_two_nodes() -> None:
    with pytest.raises(PlacementError):
        place_new_bdb(1, [1], [], replication=True)
    with pytest.raises(PlacementError):
        place_new_bdb(1, [], [], replication=False)


def test_leaving_master_first_gets_a_synced_replica_then_fails_over_then_moves() -> None:
    shards = [PlacedShard(1, 1, 1, "master"), PlacedShard(2, 1, 2, "slave")]
    plan = repair({1: True}, shards, placeable={2, 3}, evacuate={1}, in_sync={2}, up={1, 2, 3})
    assert plan.failover == [1] and not plan.remove
    # after the failover: node 1 holds the replica; a new replica goes to node 3, then node 1's goes
    shards = [PlacedShard(1, 1, 1, "slave"), PlacedShard(2, 1, 2, "master")]
    plan = repair({1: True}, shards, placeable={2, 3}, evacuate={1}, in_sync={1}, up={1, 2, 3})
    assert [(a.node_uid, a.role) for a in plan.add] == [(3, "slave")] and not plan.remove
    shards.append(PlacedShard(3, 1, 3, "slave"))
    plan = repair({1: True}, shards, placeable={2, 3}, evacuate={1}, in_sync={1, 3}, up={1, 2, 3})
    assert plan.remove == [1] and not plan.add and not plan.failover


def test_unreplicated_master_on_leaving_node_moves_through_a_temporary_replica() -> None:
    shards = [PlacedShard(1, 1, 1, "master")]
    plan = repair({1: False}, shards, placeable={2, 3}, evacuate={1}, in_sync=set(), up={1, 2, 3})
    assert len(plan.add) == 1 and plan.add[0].node_uid in {2, 3} and not plan.failover
    shards.append(PlacedShard(2, 1, plan.add[0].node_uid, "slave"))
    plan = repair({1: False}, shards, placeable={2, 3}, evacuate={1}, in_sync={2}, up={1, 2, 3})
    assert plan.failover == [1]
    shards = [PlacedShard(1, 1, 1, "slave"), PlacedShard(2, 1, shards[1].node_uid, "master")]
    plan = repair({1: False}, shards, placeable={2, 3}, evacuate={1}, in_sync={1}, up={1, 2, 3})
    assert plan.remove == [1] and not plan.add


def test_briefly_down_node_keeps_its_replica() -> None:
    shards = [PlacedShard(1, 1, 1, "master"), PlacedShard(2, 1, 2, "slave")]
    plan = repair({1: True}, shards, placeable={1, 3}, evacuate=set(), in_sync=set(), up={1, 3})
    assert plan.empty()


@given(nodes=st.integers(min_value=3, max_value=6), leaving=st.integers(min_value=1, max_value=6),
       dbs=st.lists(st.booleans(), min_size=1, max_size=8))
def test_repair_never_adds_a_replica_beside_its_master_or_on_a_leaving_node(
        nodes: int, leaving: int, dbs: list[bool]) -> None:
    leaving = min(leaving, nodes)
    shards: list[PlacedShard] = []
    for bdb_uid, replication in enumerate(dbs, start=1):
        shards = _apply(shards, bdb_uid, place_new_bdb(bdb_uid, range(1, nodes + 1), shards, replication))
    placeable = set(range(1, nodes + 1)) - {leaving}
    everyone = set(range(1, nodes + 1))
    plan = repair(dict(enumerate(dbs, start=1)), shards, placeable, {leaving}, set(), everyone)
    for add in plan.add:
        assert add.node_uid != leaving
        assert all(s.node_uid != add.node_uid for s in shards if s.bdb_uid == add.bdb_uid)


def test_a_node_lost_without_notice_is_evacuated_after_the_grace_an_announced_one_later() -> None:
    down = {1: 100.0, 2: 100.0}
    assert nodes_to_evacuate(down, 101.0, 2.0) == set()
    assert nodes_to_evacuate(down, 103.0, 2.0, restarting={2}, restart_grace_s=60.0) == {1}
    assert nodes_to_evacuate(down, 161.0, 2.0, restarting={2}, restart_grace_s=60.0) == {1, 2}
    # a grace longer than the restart grace holds for both; slave_ha off: nobody ever moves
    assert nodes_to_evacuate(down, 161.0, 120.0, restarting={2}, restart_grace_s=60.0) == set()
    assert nodes_to_evacuate(down, 1e9, None, restarting={2}, restart_grace_s=60.0) == set()


@given(st.dictionaries(st.integers(1, 5), st.floats(0, 100)), st.floats(0, 200), st.floats(0, 50),
       st.sets(st.integers(1, 5)), st.floats(0, 100))
def test_an_announced_restart_never_moves_replicas_sooner(down: dict[int, float], now: float, grace: float,
                                                         restarting: set[int], restart_grace: float) -> None:
    planned = nodes_to_evacuate(down, now, grace, restarting, restart_grace)
    assert planned <= nodes_to_evacuate(down, now, grace) <= set(down)
