"""The leader's decisions, given what it observed: shard roles after a failover, shard and database
status, replica repair and node removal. Pure: mutates the state document it is given and returns
what it changed (for logs and to skip empty writes); the leader applies it through the CCS write path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recluster.node.placement import PlacedShard, Plan, repair
from recluster.node.records import ClusterState, ShardRecord

CREATION_TIMEOUT_S = 120.0


@dataclass
class Observation:
    now: float  # monotonic seconds
    up: set[int]  # node uids whose CCS answers
    evacuate_down: set[int]  # nodes down for longer than the grace time
    sentinel_masters: dict[str, tuple[str, int]]  # sentinel master name -> (host, port), not o_down
    shard_alive: dict[int, bool]  # shard uid -> answers PING
    shard_in_sync: set[int]  # replica shard uids whose master link is up
    shard_config_ok: dict[int, bool]  # shard uid -> runs the bdb's current settings
    port_closed_everywhere: dict[int, bool]  # bdb uid (delete-pending) -> no node listens on its port
    pending_since: dict[int, float] = field(default_factory=dict)  # bdb uid -> first seen pending
    resolved_addr: dict[int, str] = field(default_factory=dict)  # node uid -> what its name resolves to
    # bdb uids (pending, replicated) whose failover is armed: every live node's sentinel monitors it,
    # knows its replica and knows the other live sentinels (see `bdb_status`)
    failover_armed: set[int] = field(default_factory=set)
    # asked only while a database is not active (an engine upgrade, a change, a creation): the version
    # a shard runs (INFO, as engines.engine_of_info names it) and its role as it answers
    shard_version: dict[int, str] = field(default_factory=dict)
    shard_role: dict[int, str] = field(default_factory=dict)


def sync_roles(state: ClusterState, obs: Observation) -> list[str]:
    """Record the masters Sentinel reports (after a failover) as shard roles."""
    changes = []
    by_bdb = state.shards_by_bdb()
    for bdb in state.bdbs.values():
        addr = obs.sentinel_masters.get(bdb.name)
        if addr is None or addr[1] != bdb.port:
            continue
        node = state.node_by_name(addr[0])
        if node is None:
            continue
        own = by_bdb.get(bdb.uid, [])
        if not any(s.node_uid == node.uid for s in own):
            continue
        for shard in own:
            role = "master" if shard.node_uid == node.uid else "slave"
            if shard.role != role:
                shard.role = role  # type: ignore[assignment]
                changes.append(f"shard {shard.uid} of bdb {bdb.uid} is now {role}")
    return changes


def sync_status(state: ClusterState, obs: Observation) -> list[str]:
    changes = []
    for shard in state.shards.values():
        alive = obs.shard_alive.get(shard.uid)
        if alive is None:
            continue
        status = "active" if alive else "inactive"
        if shard.status != status:
            shard.status = status  # type: ignore[assignment]
            changes.append(f"shard {shard.uid} is {status}")
    for node in state.nodes.values():
        addr = obs.resolved_addr.get(node.uid)
        if addr and addr != node.addr:
            changes.append(f"node {node.uid} ({node.name}) moved from {node.addr} to {addr}")
            node.addr = addr
        reachable = node.uid in obs.up
        if node.reachable != reachable:
            node.reachable = reachable
            changes.append(f"node {node.uid} is {'up' if reachable else 'down'}")
    return changes


def min_replicas(state: ClusterState, obs: Observation) -> list[str]:
    """A replicated database's master refuses writes without a replica (min-replicas-to-write 1)
    only while an in-sync replica on a live node exists; the leader (which holds a majority, or it
    could not write this) lowers it to 0 when the replica is lost so the database stays writable.

    A shard recorded as a replica is never lowered: right after a failover it may still be the old
    master (Sentinel demotes a reachable old master only seconds later, and a leaving node's shards
    run until its hand-off ends). Its replica left it when promoted, so with 1 it refuses writes;
    lowered to 0 it would take writes the new master never sees, acknowledged and then lost. Once
    it is seen replicating from the new master (in sync) it is fenced by that and goes back to 0:
    kept at 1, a later promotion of it would refuse writes until the leader noticed."""
    changes = []
    by_bdb = state.shards_by_bdb()
    for bdb in state.bdbs.values():
        own = by_bdb.get(bdb.uid, [])
        healthy = any(s.role != "master" and s.node_uid in obs.up and s.uid in obs.shard_in_sync
                      for s in own)
        for shard in own:
            if shard.role != "master":
                if shard.min_replicas_to_write and shard.uid in obs.shard_in_sync:
                    shard.min_replicas_to_write = 0
                    changes.append(f"shard {shard.uid} min-replicas-to-write 0 (a replica in sync)")
                continue  # else fenced as it is (see above); a true replica takes no writes anyway
            wanted = 1 if (bdb.replication and healthy) else 0
            if shard.min_replicas_to_write != wanted:
                shard.min_replicas_to_write = wanted
                changes.append(f"shard {shard.uid} min-replicas-to-write {wanted}")
    return changes


def bdb_status(state: ClusterState, obs: Observation) -> list[str]:
    changes = []
    by_bdb = state.shards_by_bdb()
    for bdb in list(state.bdbs.values()):
        own = by_bdb.get(bdb.uid, [])
        if bdb.status == "delete-pending":
            if not own and obs.port_closed_everywhere.get(bdb.uid):
                del state.bdbs[bdb.uid]
                _finish_action(state, bdb.action_uid, "completed")
                changes.append(f"bdb {bdb.uid} deleted")
            continue
        ready = bool(own) and all(obs.shard_alive.get(s.uid) for s in own)
        if bdb.status == "pending":
            # `active` promises failover: the sentinels meet through the new master's hello channel
            # (every 2 s) and learn its replica from its INFO; a master lost before that can never
            # reach a quorum (+sdown, never +odown), so a replicated database waits for both
            armed = not bdb.replication or bdb.uid in obs.failover_armed
            if ready and armed:
                bdb.status = "active"
                _finish_action(state, bdb.action_uid, "completed")
                changes.append(f"bdb {bdb.uid} active")
            elif obs.now - obs.pending_since.get(bdb.uid, obs.now) > CREATION_TIMEOUT_S:
                bdb.status = "creation-failed"
                why = ("the sentinels did not all learn the replica and each other in time" if ready
                       else "shards did not start in time")
                _finish_action(state, bdb.action_uid, "failed", why)
                changes.append(f"bdb {bdb.uid} creation-failed: {why}")
        elif bdb.status == "active-change-pending" and not bdb.upgrade_from and ready and all(
                obs.shard_config_ok.get(s.uid) for s in own):
                bdb.status = "active"
                _finish_action(state, bdb.action_uid, "completed")
                changes.append(f"bdb {bdb.uid} change applied")
    return changes


def _finish_action(state: ClusterState, action_uid: str, status: str, error: str = "") -> None:
    action = state.actions.get(action_uid)
    if action is None or action.status in ("completed", "failed"):
        return
    action.status = status  # type: ignore[assignment]
    action.progress = 100 if status == "completed" else action.progress
    if error:
        action.error_code, action.error_message = "internal_error", error


def plan_repair(state: ClusterState, obs: Observation) -> Plan:
    leaving = {n.uid for n in state.nodes.values() if n.status == "decommissioning"}
    placeable = {n.uid for n in state.nodes.values() if n.status == "active" and n.uid in obs.up}
    evacuate = leaving | (obs.evacuate_down & set(state.nodes))
    replication = {b.uid: b.replication for b in state.bdbs.values()
                   if b.status in ("active", "active-change-pending", "pending")}
    placed = [PlacedShard(s.uid, s.bdb_uid, s.node_uid, s.role) for s in state.shards.values()]
    return repair(replication, placed, placeable, evacuate, obs.shard_in_sync, obs.up)


def apply_plan(state: ClusterState, plan: Plan) -> list[str]:
    changes = []
    for add in plan.add:
        uid = state.allocate("shard")
        state.shards[uid] = ShardRecord(uid=uid, bdb_uid=add.bdb_uid, node_uid=add.node_uid, role="slave")
        changes.append(f"new replica shard {uid} of bdb {add.bdb_uid} on node {add.node_uid}")
    for shard_uid in plan.remove:
        shard = state.shards.pop(shard_uid, None)
        if shard is not None:
            changes.append(f"shard {shard_uid} of bdb {shard.bdb_uid} removed from node {shard.node_uid}")
    return changes


def progress_removals(state: ClusterState, leader_uid: int) -> tuple[list[str], bool]:
    """Advance node-removal actions: progress from the shards left on the node; the node record goes
    once it holds nothing. Returns (changes, leader must hand over the CCS first)."""
    changes: list[str] = []
    handover = False
    for action in state.actions.values():
        if action.name != "remove_node" or action.status not in ("queued", "running"):
            continue
        node_uid = action.node_uid
        if node_uid is None or node_uid not in state.nodes:
            action.status, action.progress = "completed", 100
            changes.append(f"action {action.action_uid} completed")
            continue
        if action.status == "queued":
            action.status = "running"
            changes.append(f"action {action.action_uid} running")
        left = len(state.shards_on(node_uid))
        total = max(action.initial_shards, left, 1)
        progress = min(95, int(100 * (total - left) / total)) if action.initial_shards else 50
        if left:
            action.step = f"moving {left} shard(s) off node {node_uid}"
        if progress != action.progress:
            action.progress = progress
            changes.append(f"action {action.action_uid} {progress}%")
        if left:
            continue
        if node_uid == leader_uid:
            handover = True
            if action.step != "handing over the configuration store":
                action.step = "handing over the configuration store"
                changes.append(f"action {action.action_uid}: leader hands over the CCS")
            continue
        del state.nodes[node_uid]
        action.status, action.progress, action.step = "completed", 100, "node removed"
        changes.append(f"node {node_uid} removed")
    return changes, handover


def settled(state: ClusterState, obs: Observation) -> bool:
    """Nothing for the leader to follow closely: every node up and active, every database active,
    every shard answering with its settings, every replica in sync, no action running. Then the
    leader may look less often (events and REST writes still wake it at once)."""
    return (
        obs.up >= set(state.nodes)
        and all(node.status == "active" for node in state.nodes.values())
        and all(bdb.status == "active" for bdb in state.bdbs.values())
        and all(obs.shard_alive.get(uid) and obs.shard_config_ok.get(uid) for uid in state.shards)
        and all(s.uid in obs.shard_in_sync for s in state.shards.values() if s.role == "slave")
        and not any(a.status in ("queued", "running") for a in state.actions.values())
    )
