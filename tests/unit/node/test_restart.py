"""Where a stopped master shard may start again: never as an empty master while a copy exists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.restart import PeerShard, restart_decision

pytestmark = pytest.mark.unit

HOLD = 30.0

peers_st = st.lists(
    st.builds(
        PeerShard,
        node=st.sampled_from(["n1", "n2", "n3"]),
        role=st.sampled_from(["master", "replica"]),
        offset=st.integers(0, 10**9),
        syncing=st.booleans(),
    ),
    max_size=3,
    unique_by=lambda p: p.node,
)


@given(peers_st, st.booleans(), st.floats(0, 300))
def test_an_empty_shard_never_starts_as_master_while_another_holds_a_copy(
    peers: list[PeerShard], own_data: bool, held: float
) -> None:
    decision = restart_decision(peers, own_data, held, HOLD)
    if any(p.holds_copy for p in peers) and not own_data:
        assert decision.action != "start"
    if decision.action == "start":
        assert not any(p.role == "master" for p in peers)


@given(peers_st, st.booleans(), st.floats(0, 300))
def test_a_peer_that_is_master_already_is_followed(
    peers: list[PeerShard], own_data: bool, held: float
) -> None:
    decision = restart_decision(peers, own_data, held, HOLD)
    masters = {p.node for p in peers if p.role == "master"}
    if masters:
        assert decision.action == "follow" and decision.peer in masters


@given(peers_st, st.lists(st.sampled_from(["n1", "n2", "n3"]), unique=True), st.booleans(), st.floats(0, 300))
def test_a_shard_that_did_not_answer_is_waited_for_like_a_copy(
    peers: list[PeerShard], silent: list[str], own_data: bool, held: float
) -> None:
    """A probe that failed (Sentinel's promotion closes every client connection) says nothing about
    the copy: within the hold time the stopped master never starts while a shard is unheard."""
    decision = restart_decision(peers, own_data, held, HOLD, silent=silent)
    unheard = set(silent) - {p.node for p in peers}
    if unheard and held < HOLD:
        assert decision.action != "start"
    if decision.action == "hold":
        assert held < HOLD


def test_a_silent_replica_holds_the_restart_back_then_lets_it_go() -> None:
    first = restart_decision([], own_data=False, held_for_s=0, hold_s=HOLD, silent=["n1"])
    assert (first.action, first.peer) == ("hold", None)
    assert "n1" in first.reason
    late = restart_decision([], own_data=False, held_for_s=HOLD, hold_s=HOLD, silent=["n1"])
    assert late.action == "start"


@given(peers_st, st.booleans(), st.floats(0, 300))
def test_holding_is_bounded_by_the_hold_time(peers: list[PeerShard], own_data: bool, held: float) -> None:
    decision = restart_decision(peers, own_data, held, HOLD)
    if decision.action == "hold":
        assert held < HOLD
    if held >= HOLD:
        assert decision.action != "hold"


def test_a_replica_that_never_synced_or_is_resyncing_is_no_copy() -> None:
    fresh = PeerShard("n1", "replica", offset=0, syncing=False)
    loading = PeerShard("n2", "replica", offset=500, syncing=True)
    assert restart_decision([fresh, loading], own_data=False, held_for_s=0, hold_s=HOLD).action == "start"


def test_a_copy_is_promoted_by_sentinel_first_then_directly() -> None:
    copy = PeerShard("n1", "replica", offset=500, syncing=False)
    first = restart_decision([copy], own_data=False, held_for_s=0, hold_s=HOLD)
    assert (first.action, first.peer) == ("hold", "n1")
    late = restart_decision([copy], own_data=False, held_for_s=HOLD, hold_s=HOLD)
    assert (late.action, late.peer) == ("take_over", "n1")


def test_after_the_hold_a_shard_with_its_own_data_starts_as_master() -> None:
    copy = PeerShard("n1", "replica", offset=500, syncing=False)
    assert restart_decision([copy], own_data=True, held_for_s=HOLD + 1, hold_s=HOLD).action == "start"


def test_the_copy_taken_over_is_the_most_recent() -> None:
    older = PeerShard("n1", "replica", offset=400, syncing=False)
    newer = PeerShard("n2", "replica", offset=900, syncing=False)
    decision = restart_decision([older, newer], own_data=False, held_for_s=HOLD, hold_s=HOLD)
    assert (decision.action, decision.peer) == ("take_over", "n2")
