"""Which databases a node fails over: only with a majority of sentinels agreeing, only from the node
that holds the replica, never twice."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.failover_decision import (
    MasterView,
    database_quorum,
    follow_named_ccs_master,
    masters_to_fail_over,
    suspects,
)

pytestmark = pytest.mark.unit

NAMES = ["a", "b", "c", "d"]
ADDRESSES = ["198.18.0.10", "198.18.0.11", "198.18.0.12"]
ME = {"198.18.0.11"}

views = st.builds(
    MasterView,
    ip=st.sampled_from(ADDRESSES),
    port=st.sampled_from([10001, 10002]),
    down=st.booleans(),
    failing_over=st.booleans(),
)
sentinel_st = st.dictionaries(st.sampled_from(NAMES), views)


@given(st.sets(st.sampled_from(NAMES)), sentinel_st, st.lists(sentinel_st, max_size=4), st.integers(1, 4))
def test_a_failover_needs_a_majority_seeing_the_same_master_down(
    local: set[str], own: dict[str, MasterView], peers: list[dict[str, MasterView]], majority: int
) -> None:
    for name in masters_to_fail_over(suspects(local, own, ME), own, peers, majority):
        view = own[name]
        agreeing = [p for p in peers if (v := p.get(name)) and v.down and v.address == view.address]
        assert 1 + len(agreeing) >= majority
        assert name in local  # only a node holding a shard of it decides
        assert view.ip not in ME  # never the node whose shard is the master
        assert not view.failing_over  # never a second failover over a running one


@given(st.sets(st.sampled_from(NAMES)), sentinel_st, st.integers(1, 4))
def test_peers_that_do_not_answer_never_make_a_majority(
    local: set[str], own: dict[str, MasterView], majority: int
) -> None:
    decided = masters_to_fail_over(suspects(local, own, ME), own, [], majority)
    assert decided == ([] if majority > 1 else suspects(local, own, ME))


def test_two_of_three_sentinels_fail_over_every_master_of_the_lost_node_at_once() -> None:
    lost = "198.18.0.10"
    down = {name: MasterView(lost, 10000 + i, down=True, failing_over=False) for i, name in enumerate(NAMES)}
    decided = masters_to_fail_over(suspects(NAMES, down, ME), down, [down], majority=2)
    assert decided == NAMES


def test_a_peer_that_sees_another_address_does_not_agree() -> None:
    own = {"a": MasterView("198.18.0.10", 10001, down=True, failing_over=False)}
    elsewhere = {"a": MasterView("198.18.0.12", 10001, down=True, failing_over=False)}
    assert masters_to_fail_over(["a"], own, [elsewhere], majority=2) == []


def test_the_databases_quorum_is_out_of_the_sentinels_reach() -> None:
    for nodes in range(1, 10):
        assert database_quorum(nodes) > nodes


def test_a_lone_ccs_master_follows_the_one_a_majority_follows() -> None:
    me = {"10.0.0.3", "rec-2"}  # back at a new address; the sentinels name the node that took over
    assert follow_named_ccs_master(me, False, 0, "10.0.0.1", "master", 1, needed=1)
    assert not follow_named_ccs_master(me, True, 0, "10.0.0.1", "master", 1, needed=1)  # being promoted
    assert not follow_named_ccs_master(me, False, 0, "10.0.0.1", "slave", 1, needed=1)  # not a master
    assert not follow_named_ccs_master(me, False, 0, "10.0.0.1", "master", 0, needed=1)  # cannot write
    assert not follow_named_ccs_master(me, False, 0, "rec-2", "master", 1, needed=1)  # it names this node
    assert not follow_named_ccs_master(me, False, 0, None, "master", 1, needed=1)
    assert not follow_named_ccs_master(me, False, 0, "10.0.0.1", "master", 0, needed=0)  # one node


@given(st.booleans(), st.integers(0, 4), st.integers(0, 4), st.integers(0, 2),
       st.sampled_from(["master", "slave", "None"]))
def test_a_writable_or_known_ccs_master_never_steps_down(known: bool, mine: int, theirs: int, needed: int,
                                                         role: str) -> None:
    """A master a majority follows (it may be taking writes) or that Sentinel knows (it may be the
    replica a failover is promoting) keeps its role; only a writable master elsewhere is followed."""
    follow = follow_named_ccs_master({"a"}, known, mine, "b", role, theirs, needed)
    if mine >= needed or known:
        assert not follow
    if follow:
        assert role == "master" and theirs >= needed > mine
