"""A node restarted with a new address rewrites its own listener lines in the sentinel.conf that
Sentinel keeps, and nothing Sentinel learned."""

from __future__ import annotations

import pytest

from recluster.node.sentinel import Hurry, refresh_directives

pytestmark = pytest.mark.unit


def test_own_lines_follow_the_new_address_and_learned_state_stays() -> None:
    kept = (
        "sentinel monitor db1 rec-1.rec.ns.svc.cluster.local 10000 2\nsentinel known-replica db1 rec-2 10000"
    )
    old = f"port 8001\nbind 198.18.8.5\ndir /data/sentinel\nsentinel announce-ip rec-0\n{kept}\n"
    new = refresh_directives(
        old,
        {
            "bind": "bind 198.18.9.7",
            "port": "port 8001",
            "sentinel announce-ip": "sentinel announce-ip rec-0",
        },
    )
    assert "bind 198.18.9.7" in new.splitlines()
    assert "bind 198.18.8.5" not in new
    assert kept in new
    assert new.count("port 8001") == 1


def test_missing_directives_are_added() -> None:
    assert refresh_directives("dir /x\n", {"bind": "bind 127.0.0.1"}).splitlines() == [
        "dir /x",
        "bind 127.0.0.1",
    ]


def test_info_period_is_one_second_for_a_few_monitors_and_slows_down_to_redis_default_with_many() -> None:
    from recluster.node.sentinel import info_period_ms

    assert [info_period_ms(n) for n in (0, 1, 10)] == [1000, 1000, 1000]
    assert info_period_ms(21) == 2100
    assert info_period_ms(101) == info_period_ms(1000) == 10000


@pytest.mark.parametrize(("ip", "flags", "expected"), [
    ("198.18.0.9", "master,s_down", True),  # nobody is there any more: move the monitor
    ("198.18.0.9", "master", False),  # it answers: maybe a replica just promoted on a moved node
    ("198.18.0.2", "master,s_down", False),  # a node's current address: a failure, Sentinel's business
    ("198.18.0.3", "master,s_down", False),  # already where it is wanted
    ("rec-1.rec.ns.svc.cluster.local", "master,s_down", False),  # a name a node has (older config)
])
def test_a_monitor_moves_only_from_a_dead_address_no_node_has(ip: str, flags: str, expected: bool) -> None:
    from recluster.node.sentinel import Monitor, stale

    wanted = Monitor("db", "198.18.0.3", 10000, 2, None)
    addresses = {"198.18.0.2", "198.18.0.3", "rec-1.rec.ns.svc.cluster.local"}
    assert stale({"ip": ip, "flags": flags}, wanted, addresses) is expected


def test_hurry_is_on_while_any_reason_holds_and_counts_only_real_changes() -> None:
    hurry = Hurry()
    assert not hurry.on
    assert hurry.set(Hurry.SUSPECTED, True)
    assert not hurry.set(Hurry.REPLICA_UNKNOWN, True)  # already hurrying: the period stays 1 s
    assert hurry.changes == 1
    assert not hurry.set(Hurry.SUSPECTED, False)  # the unknown replica still holds it
    assert hurry.on and hurry.reasons == Hurry.REPLICA_UNKNOWN
    assert hurry.set(Hurry.REPLICA_UNKNOWN, False)
    assert not hurry.on and hurry.changes == 2
    assert not hurry.set(Hurry.REPLICA_UNKNOWN, False)
