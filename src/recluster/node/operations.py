"""Changes a client asks for, run on the leader through the CCS write path (validated first, so bad
input changes nothing)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from recluster.node.backup_schedule import backup_fields
from recluster.node.ccs import utcnow
from recluster.node.config import engine_table
from recluster.node.daemon import NodeDaemon
from recluster.node.engine_upgrade import begin as begin_upgrade
from recluster.node.errors import ApiError
from recluster.node.placement import PlacedShard, PlacementError, place_new_bdb
from recluster.node.records import ActionRecord, ClusterState, ShardRecord
from recluster.node.request_models import BdbCreate, BdbUpdate, LicenseUpdate, PolicyUpdate
from recluster.node.validation import BACKUP_REQUEST, new_bdb, updated_bdb
from recluster.node.views import action_view, bdb_view, license_view, policy_view

T = TypeVar("T")


def _new_action(state: ClusterState, name: str, object_name: str,
                node_uid: int | None = None) -> ActionRecord:
    action = ActionRecord(action_uid=str(uuid.uuid4()), name=name, object_name=object_name,
                          node_uid=node_uid, status="running", creation_time=utcnow())
    state.actions[action.action_uid] = action
    # keep the last 200 finished actions
    finished = [a for a in state.actions.values() if a.status in ("completed", "failed")]
    for old in sorted(finished, key=lambda a: a.creation_time)[:-200]:
        state.actions.pop(old.action_uid, None)
    return action


async def create_bdb(daemon: NodeDaemon, request: BdbCreate) -> dict[str, Any]:
    if not request.default_user:
        # the cluster's own connections (BdbRecord.shard_user) use a password only the cluster knows
        request = request.model_copy(update={"authentication_redis_pass": secrets.token_urlsafe(24)})
    # the cluster's own logins to the shards (recluster.node.shard_users)
    internal_password = secrets.token_urlsafe(32)
    backup = backup_fields(None, request.backup, request.backup_interval, request.backup_location, utcnow(),
                           _seal(daemon))

    def change(state: ClusterState) -> dict[str, Any]:
        bdb = new_bdb(state, request, utcnow(), engines).model_copy(
            update={"internal_password": internal_password, **backup})
        nodes = [n.uid for n in state.nodes.values() if n.status == "active" and n.reachable]
        placed = [PlacedShard(s.uid, s.bdb_uid, s.node_uid, s.role) for s in state.shards.values()]
        try:
            shards = place_new_bdb(bdb.uid, nodes, placed, bdb.replication)
        except PlacementError as exc:
            raise ApiError(406, "insufficient_resources", f"cannot place the database: {exc}") from exc
        action = _new_action(state, "create_bdb", f"bdb:{bdb.uid}")
        bdb.action_uid = action.action_uid
        state.bdbs[bdb.uid] = bdb
        state.next_uid["bdb"] = max(state.next_uid.get("bdb", 1), bdb.uid + 1)
        for add in shards:
            uid = state.allocate("shard")
            state.shards[uid] = ShardRecord(uid=uid, bdb_uid=bdb.uid, node_uid=add.node_uid,
                                            role="master" if add.role == "master" else "slave")
        return bdb_view(state, bdb, engines)

    engines = engine_table(daemon.cfg)
    return await _write(daemon, change, f"create database '{request.name}'")


async def update_bdb(daemon: NodeDaemon, uid: int, request: BdbUpdate) -> dict[str, Any]:

    def change(state: ClusterState) -> dict[str, Any]:
        current = state.bdbs.get(uid)
        if current is None:
            raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
        backup = backup_fields(current, request.backup, request.backup_interval, request.backup_location,
                               utcnow(), seal) if _asks_backup(request) else None
        merged = updated_bdb(state, current, request, utcnow(), engines, backup)
        # a new generation: the shards change, an action (backup fields or external addresses alone: none)
        if merged is not current and merged.generation != current.generation:
            action = _new_action(state, "update_bdb", f"bdb:{uid}")
            merged.action_uid = action.action_uid
            if merged.redis_version != current.redis_version:
                begin_upgrade(state, current, merged, action)
        state.bdbs[uid] = merged
        return bdb_view(state, state.bdbs[uid], engines)

    engines = engine_table(daemon.cfg)
    seal = _seal(daemon)
    return await _write(daemon, change, f"update database {uid}")


def _asks_backup(request: BdbUpdate) -> bool:
    return bool(request.model_fields_set & set(BACKUP_REQUEST))


def _seal(daemon: NodeDaemon) -> Callable[[str], str]:
    """Seals a backup location's secret key for the cluster state (sealed only when one is given)."""
    return lambda secret: daemon.rt.backup_key_seal().seal(secret)


async def delete_bdb(daemon: NodeDaemon, uid: int) -> dict[str, Any]:

    def change(state: ClusterState) -> dict[str, Any]:
        bdb = state.bdbs.get(uid)
        if bdb is None:
            raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
        if bdb.status in ("pending", "active-change-pending", "delete-pending"):
            raise ApiError(409, "busy", f"database {uid} is '{bdb.status}'; retry when it is 'active'")
        action = _new_action(state, "delete_bdb", f"bdb:{uid}")
        bdb.status, bdb.action_uid, bdb.last_changed_time = "delete-pending", action.action_uid, utcnow()
        for shard in state.shards_of(uid):
            del state.shards[shard.uid]
        return {"uid": uid, "status": bdb.status, "action_uid": action.action_uid}

    return await _write(daemon, change, f"delete database {uid}")


async def remove_node(daemon: NodeDaemon, uid: int) -> dict[str, Any]:

    def change(state: ClusterState) -> dict[str, Any]:
        node = state.nodes.get(uid)
        if node is None:
            raise ApiError(404, "node_not_found", f"node {uid} does not exist")
        for action in state.actions.values():
            if (action.name == "remove_node" and action.node_uid == uid
                    and action.status in ("queued", "running")):
                raise ApiError(409, "action_in_progress",
                               f"node {uid} is already being removed (action {action.action_uid})")
        if len(state.nodes) == 1:
            raise ApiError(406, "insufficient_resources", "the last node of a cluster cannot be removed")
        for bdb in state.bdbs.values():
            if bdb.replication and len([n for n in state.nodes.values()
                                        if n.status == "active" and n.uid != uid]) < 2:
                raise ApiError(406, "insufficient_resources",
                               f"database '{bdb.name}' is replicated and needs two nodes besides node {uid}")
        node.status = "decommissioning"
        action = _new_action(state, "remove_node", f"node:{uid}", uid)
        action.initial_shards = len(state.shards_on(uid))
        action.step = "moving shards off the node"
        return action_view(action)

    return await _write(daemon, change, f"remove node {uid}")


async def put_license(daemon: NodeDaemon, request: LicenseUpdate) -> dict[str, Any]:

    def change(state: ClusterState) -> dict[str, Any]:
        state.cluster.license, state.cluster.license_updated = request.license, utcnow()
        return license_view(state)

    return await _write(daemon, change, "store the license")


async def put_policy(daemon: NodeDaemon, request: PolicyUpdate) -> dict[str, Any]:
    default_grace_s = daemon.cfg.replica_move_grace_s

    def change(state: ClusterState) -> dict[str, Any]:
        if request.slave_ha is not None:
            state.cluster.slave_ha = request.slave_ha
        if request.slave_ha_grace_period is not None:
            state.cluster.slave_ha_grace_period = request.slave_ha_grace_period
        return policy_view(state, default_grace_s)

    return await _write(daemon, change, "update the cluster policy")


async def _write(daemon: NodeDaemon, change: Callable[[ClusterState], T], what: str) -> T:
    """A REST change through the CCS write path; the leader loop looks at it at once (it may be
    waiting its settled period)."""
    return await daemon.write(change, what)
