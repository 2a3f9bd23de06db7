"""The in-place upgrade of a database's engine (`redis_version` raised), decided by the leader.

The order: each replica shard is put on the new engine (its node restarts it with the new binary,
same directory and configuration) and must be back in sync with the master; then a planned failover
makes an upgraded replica the master; then the old master, a replica now, is put on the new engine.
A newer replica reads an older master's stream, never the other way round (the rule that refuses a
downgrade: `recluster.api.engine_change`), and a master is never restarted: the data always has a
live copy. `next_step` decides one step from what the leader sees (pure); `advance` applies it to
the state document the leader writes (pure too); nodes apply the shards' engines
(`ShardSupervisor`), the leader asks the failover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recluster.api.engine_versions import normalize_version
from recluster.node.reconcile import Observation
from recluster.node.records import ActionRecord, BdbRecord, ClusterState

ACTION = "upgrade_engine"


@dataclass(frozen=True)
class ShardSeen:
    uid: int
    role: str  # as the state records it: "master" | "slave"
    engine: str  # the engine its node starts it with (ShardRecord.engine_of)
    running: str | None  # the version it answers with (INFO), None: it does not answer
    observed_role: str | None  # INFO's role, None: it does not answer
    in_sync: bool  # a replica whose link to its master is up
    node_up: bool


@dataclass(frozen=True)
class Step:
    restart: tuple[int, ...] = ()  # shard uids to put on the target engine now
    failover: bool = False  # ask a planned failover (an upgraded replica is in sync)
    done: bool = False  # every shard runs the target
    message: str = ""  # what the upgrade does or waits for (the action's step)
    progress: int = 0  # percent: the share of shards that run the target


def _on(shard: ShardSeen, target: str) -> bool:
    return shard.engine == target and shard.running == target


def next_step(target: str, shards: Sequence[ShardSeen]) -> Step:
    """One step towards every shard of the database running `target`. Never restarts the shard the
    state records as master, never restarts anything while that master does not answer as one (the
    data's copy), restarts one shard at a time, fails over only to a replica that runs `target` and is in
    sync, and finishes only when every shard runs `target` (replicas in sync)."""
    total = max(len(shards), 1)
    progress = min(99, 100 * sum(_on(s, target) for s in shards) // total)
    replicas = [s for s in shards if s.role != "master"]
    if shards and all(_on(s, target) for s in shards) and all(s.in_sync for s in replicas):
        return Step(done=True, message=f"every shard runs {target}", progress=100)
    masters = [s for s in shards if s.role == "master"]
    if len(masters) != 1:
        return Step(message="waiting for the database to have one master", progress=progress)
    master = masters[0]
    if master.observed_role != "master" or not master.node_up:
        return Step(message=f"waiting for the master shard {master.uid} to answer as master",
                    progress=progress)
    moving = [s for s in shards if s.engine == target and s.running != target]
    if moving:
        return Step(message=f"waiting for shard {moving[0].uid} to run {target}", progress=progress)
    lagging = [s for s in replicas if s.engine == target and not s.in_sync]
    if lagging:
        return Step(message=f"waiting for replica shard {lagging[0].uid} on {target} to sync with the master",
                    progress=progress)
    # a replica of the old engine. The old master right after the failover may still answer as
    # master (Sentinel converts it only ~8 s later): restarting it then loses nothing the new master,
    # which answers as master, does not hold (Sentinel's conversion would drop the same writes), and
    # its node restarts it as a replica of the master its sentinel names
    old = [s for s in replicas if s.engine != target]
    if old:
        if not old[0].node_up:
            return Step(message=f"waiting for the node of replica shard {old[0].uid}", progress=progress)
        return Step(restart=(old[0].uid,), progress=progress,
                    message=f"restarting replica shard {old[0].uid} on {target}")
    if master.engine != target:
        ready = [s for s in replicas if _on(s, target) and s.in_sync and s.observed_role == "slave"]
        if ready:
            return Step(failover=True, progress=progress, message=f"failing over from master shard "
                        f"{master.uid} to replica shard {ready[0].uid}")
        return Step(message="waiting for a replica on the new engine in sync with the master",
                    progress=progress)
    return Step(message=f"waiting for every shard to run {target}", progress=progress)


def seen(state: ClusterState, bdb: BdbRecord, obs: Observation) -> list[ShardSeen]:
    return [ShardSeen(uid=s.uid, role=s.role, engine=normalize_version(s.engine_of(bdb)) or s.engine_of(bdb),
                      running=obs.shard_version.get(s.uid) if obs.shard_alive.get(s.uid) else None,
                      observed_role=obs.shard_role.get(s.uid) if obs.shard_alive.get(s.uid) else None,
                      in_sync=s.uid in obs.shard_in_sync, node_up=s.node_uid in obs.up)
            for s in state.shards_of(bdb.uid)]


def begin(state: ClusterState, before: BdbRecord, after: BdbRecord, action: ActionRecord) -> None:
    """A PUT raised the version (validated): every shard stays on the engine it runs until `advance`
    moves it; the bdb is `active-change-pending` with an `upgrade_engine` action until done."""
    for shard in state.shards_of(before.uid):
        shard.engine = shard.engine_of(before)
    after.upgrade_from = before.upgrade_from or before.redis_version
    after.status = "active-change-pending"
    action.name = ACTION
    action.step = f"upgrading the engine from {after.upgrade_from} to {after.redis_version}"


def advance(state: ClusterState, obs: Observation) -> tuple[list[str], list[int]]:
    """Every running upgrade one step on (the state is changed in place): (changes, bdb uids whose
    planned failover the leader asks). Also records every observed shard's running version."""
    changes: list[str] = []
    failovers: list[int] = []
    for shard in state.shards.values():
        version = obs.shard_version.get(shard.uid)
        if version and obs.shard_alive.get(shard.uid) and shard.running_version != version:
            shard.running_version = version
            changes.append(f"shard {shard.uid} runs {version}")
    for bdb in state.bdbs.values():
        if not bdb.upgrade_from or bdb.status != "active-change-pending":
            continue
        target = normalize_version(bdb.redis_version) or bdb.redis_version
        step = next_step(target, seen(state, bdb, obs))
        action = state.actions.get(bdb.action_uid)
        if action is not None and (action.step, action.progress) != (step.message, step.progress):
            action.step, action.progress = step.message, step.progress
            changes.append(f"bdb {bdb.uid} upgrade: {step.message} ({step.progress}%)")
        for uid in step.restart:
            state.shards[uid].engine = target
            changes.append(f"shard {uid} of bdb {bdb.uid} goes on {target}")
            # the replica leaves for a moment: the master keeps taking writes (as when a replica is
            # lost, `reconcile.min_replicas`, which raises it again once a replica is in sync); the
            # leader applies a lowered value at once, before the node restarts the replica
            for master in state.shards_of(bdb.uid):
                if master.role == "master" and master.min_replicas_to_write:
                    master.min_replicas_to_write = 0
                    changes.append(f"shard {master.uid} min-replicas-to-write 0 (its replica restarts)")
        if step.failover:
            failovers.append(bdb.uid)
        if step.done:
            for shard in state.shards_of(bdb.uid):
                shard.engine = ""
            changes.append(f"bdb {bdb.uid} upgraded from {bdb.upgrade_from} to {target}")
            bdb.upgrade_from = ""
            bdb.status = "active"
            if action is not None and action.status not in ("completed", "failed"):
                action.status, action.progress = "completed", 100
    return changes, failovers


def upgrading(bdb: BdbRecord) -> bool:
    return bool(bdb.upgrade_from)
