"""The per-database shard index the leader's decisions use agrees with `shards_of` for every state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.records import ClusterRecord, ClusterState, ShardRecord

pytestmark = pytest.mark.unit


SHARDS = st.lists(st.tuples(st.integers(1, 8), st.integers(1, 3), st.booleans()), max_size=40)


@given(SHARDS)
def test_shards_by_bdb_is_shards_of_for_every_database(shards: list[tuple[int, int, bool]]) -> None:
    state = ClusterState(cluster=ClusterRecord(name="c", created_time="", username="u", password_hash="h"))
    for uid, (bdb, node, master) in reversed(list(enumerate(shards, start=1))):  # not in uid order
        role = "master" if master else "slave"
        state.shards[uid] = ShardRecord(uid=uid, bdb_uid=bdb, node_uid=node, role=role)
    index = state.shards_by_bdb()
    for bdb in range(0, 10):
        assert index.get(bdb, []) == state.shards_of(bdb)
