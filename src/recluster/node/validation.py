"""Rules for a database that need the cluster's state (names and ports already taken, node count).

Pure: takes the state, returns the new record or raises ApiError; changes nothing.
"""

from __future__ import annotations

from typing import Any

from recluster.api.engine_change import engine_change_refusal
from recluster.api.engine_versions import normalize_version
from recluster.node.bdb_fields import DB_PORT_MAX, DB_PORT_MIN
from recluster.node.engines import EngineTable, UnknownVersion
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterState
from recluster.node.request_models import BdbCreate, BdbUpdate
from recluster.node.users import RolePermission


def _check_common(state: ClusterState, replication: bool, shards_count: int, skip_uid: int | None) -> None:
    if shards_count > 1:
        raise ApiError(406, "invalid_sharding",
                       "'shards_count': only 1 shard per database is supported for now", "shards_count")
    if replication:
        usable = [n for n in state.nodes.values() if n.status == "active"]
        if len(usable) < 2:
            raise ApiError(406, "replication_node_violation",
                           "'replication': a replica needs a second node, and the cluster has "
                           f"{len(usable)} active node(s)", "replication")


def check_roles_permissions(state: ClusterState, permissions: list[RolePermission]) -> None:
    """A bdb's `roles_permissions` name existing roles and Redis ACLs, each role at most once."""
    seen: set[int] = set()
    for index, permission in enumerate(permissions):
        field = f"roles_permissions[{index}]"
        if permission.role_uid not in state.roles:
            raise ApiError(400, "role_not_exist", f"{field}.role_uid: no role has uid {permission.role_uid}",
                           field)
        if permission.redis_acl_uid not in state.redis_acls:
            raise ApiError(400, "redis_acl_not_exist",
                           f"{field}.redis_acl_uid: no Redis ACL has uid {permission.redis_acl_uid}", field)
        if permission.role_uid in seen:
            raise ApiError(400, "invalid_parameter", f"{field}.role_uid: role {permission.role_uid} is "
                           "listed twice (one Redis ACL per role and database)", field)
        seen.add(permission.role_uid)


def free_port(state: ClusterState, skip_uid: int | None = None) -> int | None:
    taken = {b.port for b in state.bdbs.values() if b.uid != skip_uid}
    for port in range(DB_PORT_MIN, DB_PORT_MAX + 1):
        if port not in taken:
            return port
    return None


def chosen_engine(engines: EngineTable, requested: str | None) -> str:
    """The `redis_version` a new database records: the requested engine's version (in the table's
    spelling), the default one when none is asked for, or ApiError (400) naming the versions there are."""
    try:
        return engines.resolve(requested).version
    except UnknownVersion as exc:
        raise ApiError(400, "invalid_version", f"'redis_version': {exc}", "redis_version") from exc


def check_version_change(current: BdbRecord, requested: str | None, replication: bool,
                         engines: EngineTable | None) -> str | None:
    """The version a PUT moves the database to (the table's spelling), None when it stays; or
    ApiError (400) naming `redis_version` and why the cluster does not make that change in place
    (`recluster.api.engine_change`: not bundled, a downgrade, Redis <-> Valkey, no replica)."""
    if requested is None or normalize_version(requested) == normalize_version(current.redis_version):
        return None
    bundled = engines.versions() if engines is not None else None
    refusal = engine_change_refusal(current.redis_version, requested, bundled, replication)
    if refusal is not None:
        raise ApiError(400, "invalid_version", f"'redis_version': {refusal}; nothing was changed",
                       "redis_version")
    return chosen_engine(engines, requested) if engines is not None else normalize_version(requested)


BACKUP_REQUEST = ("backup", "backup_interval", "backup_location")  # node/backup_schedule.py writes them


def new_bdb(state: ClusterState, req: BdbCreate, now: str, engines: EngineTable) -> BdbRecord:
    """The record of a database to create, or ApiError naming the field and the rule."""
    redis_version = chosen_engine(engines, req.redis_version)
    if req.uid is not None and req.uid in state.bdbs:
        raise ApiError(409, "uid_exists", f"'uid': a database with uid {req.uid} exists", "uid")
    for bdb in state.bdbs.values():
        if bdb.name == req.name:
            raise ApiError(409, "name_exists", f"'name': a database named '{req.name}' exists "
                           f"(uid {bdb.uid}); names are unique in the cluster", "name")
    if req.port is not None:
        for bdb in state.bdbs.values():
            if bdb.port == req.port:
                raise ApiError(409, "port_unavailable",
                               f"'port': {req.port} is used by database uid {bdb.uid}", "port")
    _check_common(state, req.replication, req.shards_count, None)
    check_roles_permissions(state, req.roles_permissions)
    port = req.port if req.port is not None else free_port(state)
    if port is None:
        raise ApiError(406, "port_unavailable",
                       f"'port': no free port left in {DB_PORT_MIN}-{DB_PORT_MAX}", "port")
    uid = req.uid if req.uid is not None else max([*state.bdbs, state.next_uid.get("bdb", 1) - 1]) + 1
    return BdbRecord(
        uid=uid, name=req.name, type=req.type, memory_size=req.memory_size, port=port,
        replication=req.replication, shards_count=req.shards_count,
        data_persistence=req.data_persistence, aof_policy=req.aof_policy,
        snapshot_policy=req.snapshot_policy, eviction_policy=req.eviction_policy,
        authentication_redis_pass=req.authentication_redis_pass, tls_mode=req.tls_mode,
        enforce_client_authentication=req.enforce_client_authentication,
        authentication_ssl_client_certs=req.authentication_ssl_client_certs,
        default_user=req.default_user, roles_permissions=req.roles_permissions,
        redis_version=redis_version, status="pending", created_time=now, last_changed_time=now,
    )


def _check_immutable(current: BdbRecord, req: BdbUpdate) -> None:
    """Name and port may be sent, never changed."""
    if req.name is not None and req.name != current.name:
        raise ApiError(406, "invalid_parameter", "'name': cannot be changed (it is the Sentinel "
                       "master name clients use)", "name")
    if req.port is not None and req.port != current.port:
        raise ApiError(406, "port_unavailable", "'port': cannot be changed", "port")


def _with_external_addresses(current: BdbRecord, req: BdbUpdate) -> BdbRecord:
    """Only the addresses outside the cluster change (the services rigger's call): no change of the
    database itself, so it is not busy, takes no action and keeps its generation; any status but
    being deleted."""
    _check_immutable(current, req)
    if current.status == "delete-pending":
        raise ApiError(409, "busy", f"database {current.uid} is being deleted")
    if req.external_addr == current.external_addr:
        return current
    return current.model_copy(update={"external_addr": req.external_addr})


def updated_bdb(state: ClusterState, current: BdbRecord, req: BdbUpdate, now: str,
                engines: EngineTable | None = None, backup: dict[str, Any] | None = None) -> BdbRecord:
    """The record after a partial update, or ApiError. Name and port are immutable. `backup`: the
    backup fields the update sets (node/backup_schedule.backup_fields); a change of only those is the
    leader's alone and leaves the shards (and the status) as they are."""
    if req.model_fields_set - {"name", "port"} == {"external_addr"} and req.external_addr is not None:
        return _with_external_addresses(current, req)
    if current.upgrade_from:
        raise ApiError(409, "busy", f"database {current.uid} is upgrading its engine from "
                       f"{current.upgrade_from} to {current.redis_version} (its action "
                       f"{current.action_uid} shows the step); retry when it is 'active'")
    if current.status not in ("active",):
        raise ApiError(409, "busy", f"database {current.uid} is '{current.status}'; retry when it is "
                       "'active'")
    _check_immutable(current, req)
    if req.tls_mode is not None and req.tls_mode != current.tls_mode:
        # the shards would change listeners and the database its sentinel (TLS databases have their
        # own): not built for a live database yet
        raise ApiError(406, "invalid_parameter", f"'tls_mode': cannot be changed on an existing database "
                       f"(it is '{current.tls_mode}'); create a new database with the mode you want",
                       "tls_mode")
    if req.default_user is not None and req.default_user != current.default_user:
        # the cluster's own clients of the shards (replication, probes, Sentinel) would change user
        # on a live database: not built yet
        raise ApiError(406, "invalid_parameter", f"'default_user': cannot be changed on an existing "
                       f"database (it is {str(current.default_user).lower()}); create a new database "
                       "with the setting you want", "default_user")
    if (not current.default_user and req.authentication_redis_pass is not None
            and req.authentication_redis_pass != current.authentication_redis_pass):
        raise ApiError(406, "invalid_parameter", "'authentication_redis_pass': this database's default "
                       "user is off; its password is the cluster's own and cannot be set",
                       "authentication_redis_pass")
    if req.roles_permissions is not None:
        check_roles_permissions(state, req.roles_permissions)
    if req.redis_version is not None and engines is not None:
        chosen_engine(engines, req.redis_version)  # an unknown version says which there are
    # the replica the upgrade fails over to must exist before it starts (and stay)
    replicated = current.replication and req.replication is not False
    target = check_version_change(current, req.redis_version, replicated, engines)
    changes = req.model_dump(exclude_unset=True, exclude={"name", "port", "redis_version", *BACKUP_REQUEST})
    merged = current.model_copy(update={**changes, **(backup or {})})
    if target is not None:  # engine_upgrade.begin pins the shards and sets the status
        merged.redis_version = target
    if req.snapshot_policy is not None:
        merged.snapshot_policy = req.snapshot_policy
    if req.authentication_ssl_client_certs is not None:
        merged.authentication_ssl_client_certs = req.authentication_ssl_client_certs
    if req.roles_permissions is not None:
        merged.roles_permissions = req.roles_permissions
    _check_common(state, merged.replication, merged.shards_count, current.uid)
    if merged == current:
        return current
    if merged.model_copy(update={k: getattr(current, k) for k in backup or {}}) == current:
        merged.last_changed_time = now
        return merged
    merged.status = "active-change-pending"
    merged.generation = current.generation + 1
    merged.last_changed_time = now
    return merged
