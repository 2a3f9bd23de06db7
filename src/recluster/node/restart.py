"""Where a stopped master shard of a replicated database may start again. Pure: the node daemon
probes the database's other shards and applies the answer.

A master shard whose redis-server died, or whose node restarted (with its volume or on an empty
one), before Sentinel moved the role must not come back as master while another shard holds a
copy: started as master it holds less than that copy (nothing without persistence, up to a second
less with AOF every second), and the copy, resynchronising from it, would drop every write that
WAIT confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PeerShard:
    """What another shard of the database answered (INFO replication)."""

    node: str
    role: Literal["master", "replica"]
    offset: int  # master_repl_offset: 0 = it never received a dataset
    syncing: bool  # master_sync_in_progress: its copy is being replaced

    @property
    def holds_copy(self) -> bool:
        return self.role == "master" or (self.offset > 0 and not self.syncing)


@dataclass(frozen=True)
class RestartDecision:
    # start: as master at once; follow: as replica of `peer`; hold: not yet (Sentinel is asked to
    # promote a copy); take_over: promote `peer` directly (REPLICAOF NO ONE), then follow it.
    action: Literal["start", "follow", "hold", "take_over"]
    peer: str | None
    reason: str


def restart_decision(
    peers: Iterable[PeerShard],
    own_data: bool,
    held_for_s: float,
    hold_s: float,
    silent: Iterable[str] = (),
) -> RestartDecision:
    """peers: the other shards that answered; own_data: this shard has a persistence file to load;
    held_for_s: how long it has been held already; silent: the nodes whose shard of the database did
    not answer. A silent shard may hold a copy (Sentinel's promotion closes every client connection,
    so a probe made just then fails): it is waited for like a copy, never taken for "no copy"."""
    answered = list(peers)
    master = next((p for p in answered if p.role == "master"), None)
    if master is not None:
        return RestartDecision("follow", master.node, f"{master.node} holds the master role")
    copies = sorted((p for p in answered if p.holds_copy), key=lambda p: (-p.offset, p.node))
    unknown = sorted(set(silent) - {p.node for p in answered})
    if not copies:
        if unknown and held_for_s < hold_s:
            return RestartDecision("hold", None, f"waiting for the shard on {', '.join(unknown)} to answer")
        if unknown:
            return RestartDecision(
                "start", None, f"the shard on {', '.join(unknown)} did not answer within {hold_s:.0f} s"
            )
        return RestartDecision("start", None, "no other shard holds a copy")
    best = copies[0]
    if held_for_s < hold_s:
        return RestartDecision("hold", best.node, f"promoting the replica on {best.node}")
    if own_data:
        reason = f"the replica was not promoted within {hold_s:.0f} s; this shard loads its own data"
        return RestartDecision("start", None, reason)
    return RestartDecision(
        "take_over",
        best.node,
        f"the replica on {best.node} was not promoted within {hold_s:.0f} s and this shard has no data: "
        "promoting it directly",
    )
