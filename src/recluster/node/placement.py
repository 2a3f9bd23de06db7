"""Shard placement: where a database's shards go, and what to change when nodes fail or leave.

Pure: no I/O. The leader calls these with a snapshot of the cluster and applies the result.
Rules: a master and its replica never share a node; masters are spread over the nodes (fewest
masters first, then fewest shards, then lowest uid, so the answer is deterministic).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlacedShard:
    uid: int
    bdb_uid: int
    node_uid: int
    role: str  # "master" | "slave"


@dataclass(frozen=True)
class AddShard:
    bdb_uid: int
    node_uid: int
    role: str


@dataclass
class Plan:
    add: list[AddShard] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)  # shard uids
    failover: list[int] = field(default_factory=list)  # bdb uids whose master must move (planned)

    def empty(self) -> bool:
        return not (self.add or self.remove or self.failover)


def nodes_to_evacuate(down_since: Mapping[int, float], now: float, grace_s: float | None,
                      restarting: Iterable[int] = (), restart_grace_s: float = 0.0) -> set[int]:
    """The down nodes whose replicas move now (`down_since`: node uid -> when first seen down, in
    `now`'s clock). A node that announced a restart (SIGTERM: a rolling change, a pod deleted, a
    drain) gets at least `restart_grace_s`, so a planned restart does not copy its replicas
    elsewhere; a node lost without notice gets `grace_s`, so its databases soon have a replica again
    (a master without one cannot confirm a write with WAIT). None: replicas never move."""
    if grace_s is None:
        return set()
    planned = set(restarting)
    return {uid for uid, since in down_since.items()
            if now - since > (max(grace_s, restart_grace_s) if uid in planned else grace_s)}


class PlacementError(Exception):
    pass


def _load(shards: Iterable[PlacedShard]) -> tuple[Counter[int], Counter[int]]:
    masters: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for shard in shards:
        total[shard.node_uid] += 1
        if shard.role == "master":
            masters[shard.node_uid] += 1
    return masters, total


def place_new_bdb(
    bdb_uid: int, nodes: Iterable[int], shards: Iterable[PlacedShard], replication: bool
) -> list[AddShard]:
    """Shards of a new single-shard database: the master on the least loaded node, the replica on
    the least loaded other node."""
    candidates = sorted(set(nodes))
    if not candidates:
        raise PlacementError("no active node can take a shard")
    if replication and len(candidates) < 2:
        raise PlacementError("replication needs two active nodes")
    masters, total = _load(shards)
    master_node = min(candidates, key=lambda n: (masters[n], total[n], n))
    placed = [AddShard(bdb_uid, master_node, "master")]
    if replication:
        total[master_node] += 1
        replica_node = _least_loaded([n for n in candidates if n != master_node], total)
        placed.append(AddShard(bdb_uid, replica_node, "slave"))
    return placed


def _least_loaded(candidates: Iterable[int], total: Mapping[int, int]) -> int:
    return min(candidates, key=lambda n: (total.get(n, 0), n))


def repair(
    replication: Mapping[int, bool],
    shards: Iterable[PlacedShard],
    placeable: set[int],
    evacuate: set[int],
    in_sync: set[int],
    up: set[int] | None = None,
) -> Plan:
    """What to change so every database has its master and (if replicated) one replica on nodes that
    stay, and nothing on the nodes to `evacuate` (leaving, or down for longer than the grace time).

    replication: bdb uid -> replicated; placeable: nodes that may take new shards (up, not leaving);
    in_sync: shard uids of replicas whose link to their master is up; up: nodes that answer (default:
    placeable). Nodes in neither placeable nor evacuate (down for a short while) keep their shards: a
    node that comes back soon should not cause copies.
    """
    up = placeable if up is None else up
    all_shards = list(shards)
    _, total = _load(all_shards)
    plan = Plan()
    for bdb_uid in sorted(replication):
        own = [s for s in all_shards if s.bdb_uid == bdb_uid]
        masters = [s for s in own if s.role == "master"]
        if len(masters) != 1:
            continue  # no known master (failover in progress): nothing safe to plan
        master = masters[0]
        replicas = [s for s in own if s.role != "master"]
        master_leaving = master.node_uid in evacuate
        master_ok = master.node_uid in up
        needed = 1 if (replication[bdb_uid] or master_leaving) else 0
        staying = [r for r in replicas if r.node_uid not in evacuate and r.node_uid != master.node_uid]
        good = [r for r in staying if r.node_uid in placeable]
        if master_ok and len(staying) < needed:
            used = {s.node_uid for s in own}
            free = [n for n in placeable if n not in used]
            if free:
                node = _least_loaded(free, total)
                total[node] += 1
                plan.add.append(AddShard(bdb_uid, node, "slave"))
        synced = [r for r in good if r.uid in in_sync]
        if master_leaving and synced:
            plan.failover.append(bdb_uid)
        for replica in replicas:
            if replica.node_uid in evacuate and (synced or needed == 0):
                plan.remove.append(replica.uid)
        if not master_leaving and not replication[bdb_uid]:
            # a replica kept only to move a master off a leaving node is dropped once it is master
            for replica in staying:
                if replica.uid not in plan.remove:
                    plan.remove.append(replica.uid)
        elif len(synced) > needed:
            for replica in synced[needed:]:
                plan.remove.append(replica.uid)
    return plan
