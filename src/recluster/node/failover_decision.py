"""Which databases this node fails over when their master is lost (pure).

Sentinel's own elections do not scale to a crashed node holding many masters: its epoch is one
counter for every master, a sentinel votes only for a request whose epoch is at least its own, and
each failover it starts raises its epoch. Two surviving sentinels starting 66 elections at once
therefore refuse each other's requests, most elections fail, and each is retried only after twice
the failover timeout (`bench/scale.py`: 2 of 66 masters failed over within 10 s, median 58.6 s).

So the databases' monitors get a quorum Sentinel never reaches (`database_quorum`) and the decision
is ours, made per database by exactly one node: the one holding a shard of it that is not its
master (its replica; with one replica there is one such node, and it is alive if a failover is
possible at all). When a majority of all sentinels, counted by the same majority rule as
everywhere, report the master subjectively down at the same address, that node asks its own
sentinel for `SENTINEL FAILOVER`: no election, and no dependence on the CCS leader, the
apiserver or DNS. The sentinels keep doing what they do well: detecting, choosing the replica,
promoting it, publishing `+switch-master` and the new configuration epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MasterView:
    """What one sentinel says of one monitored master."""

    ip: str
    port: int
    down: bool  # s_down (or o_down)
    failing_over: bool

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)

    @classmethod
    def from_entry(cls, entry: Mapping[str, str]) -> MasterView:
        """From a SENTINEL MASTERS row."""
        flags = set(entry.get("flags", "").split(","))
        return cls(
            ip=entry.get("ip", ""),
            port=int(entry.get("port") or 0),
            down=bool(flags & {"s_down", "o_down"}),
            failing_over=bool(flags & {"failover_in_progress", "promoted"}),
        )


def database_quorum(nodes: int) -> int:
    """The quorum of every database monitor: one more than there are sentinels, so that no
    sentinel ever reaches `o_down` and starts an election of its own (see the module's doc)."""
    return nodes + 1


def suspects(local: Iterable[str], own: Mapping[str, MasterView], my_addresses: set[str]) -> list[str]:
    """The databases with a shard on this node (`local`) whose master, at another address, this
    node's sentinel sees down and is not already failing over."""
    out = []
    for name in sorted(set(local)):
        view = own.get(name)
        if view is not None and view.down and not view.failing_over and view.ip not in my_addresses:
            out.append(name)
    return out


def masters_to_fail_over(
    suspected: Iterable[str],
    own: Mapping[str, MasterView],
    peers: Iterable[Mapping[str, MasterView]],
    majority: int,
) -> list[str]:
    """Of the suspected databases, those a majority of sentinels (this node's included) see down
    at the same master address. A peer that did not answer counts as not agreeing."""
    answered = list(peers)
    out = []
    for name in suspected:
        view = own.get(name)
        if view is None or not view.down:
            continue
        agree = 1 + sum(
            1
            for peer in answered
            if (seen := peer.get(name)) is not None and seen.down and seen.address == view.address
        )
        if agree >= majority:
            out.append(name)
    return out


def follow_named_ccs_master(my_addresses: set[str], known_to_sentinel: bool, my_replicas: int,
                            named: str | None, named_role: str, named_replicas: int, needed: int) -> bool:
    """This node's CCS is a master: should it become a replica of the one its sentinel names? Only
    when Sentinel will never do it itself (it knows this CCS at no address it has now: Sentinel turns
    a returning old master into a replica, and runs a failover's promotion, only at addresses it
    knows), when it cannot be the cluster's writer (fewer than `needed` replicas follow it, so it
    took no write since), and when the named one, at another address, is a master that can (at
    least `needed` follow it). Without this, a leader's node back at a new address after the CCS
    failed over stayed a lone master, reading its own stale state, for good. A replica Sentinel is
    promoting (a master with no replica yet, the old master still followed) is known to it, and
    left alone: following the old master back would undo the failover."""
    return (needed > 0 and not known_to_sentinel and named is not None and named not in my_addresses
            and my_replicas < needed and named_role == "master" and named_replicas >= needed)
