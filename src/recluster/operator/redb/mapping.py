"""REDB spec -> bdb body of the cluster's REST API, and the partial update that brings a bdb in line
with the spec. Pure: no I/O, no clock; the password and the client certificates are arguments (they
come from Secrets) and the password never appears in anything but the body sent to the cluster."""

from __future__ import annotations

from typing import Any

from recluster.api.engine_change import engine_change_refusal
from recluster.api.engine_versions import effective_version, follows_default, normalize_version
from recluster.api.quantity import parse_memory_size
from recluster.api.redb import AOF_EVERY_SECOND as _AOF_EVERY_SECOND
from recluster.api.redb import (
    EvictionPolicy,
    Persistence,
    RedisEnterpriseDatabase,
    TlsMode,
    persistence_fields,
)


def desired_settings(redb: RedisEnterpriseDatabase) -> dict[str, Any]:
    """The bdb fields the REDB spec decides and that may change after creation."""
    spec = redb.spec
    return {
        "memory_size": parse_memory_size(spec.memory_size),
        "replication": spec.replication,
        "shards_count": spec.shard_count,
        "eviction_policy": str(EvictionPolicy(spec.eviction_policy)),
        **persistence_fields(Persistence(spec.persistence)),
    }


def tls_settings(redb: RedisEnterpriseDatabase, client_certs: list[str]) -> dict[str, Any]:
    """The bdb's TLS fields: the mode, and the client certificates (read from the Secrets the spec
    lists) with whether they are required."""
    spec = redb.spec
    return {
        "tls_mode": str(TlsMode.ENABLED if spec.tls_mode == TlsMode.ENABLED else TlsMode.DISABLED),
        "enforce_client_authentication": "enabled" if spec.enforce_client_authentication else "disabled",
        "authentication_ssl_client_certs": [{"client_cert": cert} for cert in client_certs],
    }


def resolve_roles_permissions(
    redb: RedisEnterpriseDatabase, roles: list[dict[str, Any]], acls: list[dict[str, Any]]
) -> tuple[list[dict[str, int]], list[str]]:
    """The bdb's `roles_permissions` from the spec's names and the cluster's roles and Redis ACLs
    (GET /v1/roles, /v1/redis_acls), and what names no role or ACL (empty when every name does)."""
    role_uids = {str(r.get("name")): int(r["uid"]) for r in roles if "uid" in r}
    acl_uids = {str(a.get("name")): int(a["uid"]) for a in acls if "uid" in a}
    resolved: list[dict[str, int]] = []
    unknown: list[str] = []
    for index, entry in enumerate(redb.spec.roles_permissions or []):
        role, acl = role_uids.get(entry.role), acl_uids.get(entry.acl)
        if role is None:
            unknown.append(f"rolesPermissions[{index}].role: the cluster has no role named '{entry.role}'")
        if acl is None:
            unknown.append(f"rolesPermissions[{index}].acl: the cluster has no Redis ACL named '{entry.acl}'")
        if role is not None and acl is not None:
            resolved.append({"role_uid": role, "redis_acl_uid": acl})
    return resolved, unknown


def bdb_create_body(
    redb: RedisEnterpriseDatabase, password: str | None, client_certs: list[str] | None = None,
    roles_permissions: list[dict[str, int]] | None = None,
) -> dict[str, Any]:
    """POST /v1/bdbs. `password`: the default user's password (None or "": no authentication);
    `roles_permissions`: resolved by `resolve_roles_permissions`."""
    body: dict[str, Any] = {"name": redb.metadata.name, "type": "redis", **desired_settings(redb),
                            **tls_settings(redb, client_certs or [])}
    if roles_permissions:
        body["roles_permissions"] = roles_permissions
    if not redb.spec.default_user:  # only the users of rolesPermissions log in
        body["default_user"] = False
    if redb.spec.database_port is not None:
        body["port"] = redb.spec.database_port
    if redb.spec.redis_version is not None and not follows_default(redb.spec.redis_version):
        body["redis_version"] = redb.spec.redis_version  # else (unset, latest) the cluster's default
    if redb.spec.default_user and password:
        body["authentication_redis_pass"] = password
    return body


def _persistence_of(bdb: dict[str, Any]) -> dict[str, Any]:
    mode = bdb.get("data_persistence") or "disabled"
    if mode == "aof":
        return {"data_persistence": "aof", "aof_policy": bdb.get("aof_policy") or _AOF_EVERY_SECOND}
    if mode == "snapshot":
        return {"data_persistence": "snapshot", "snapshot_policy": list(bdb.get("snapshot_policy") or [])}
    return {"data_persistence": "disabled"}


def _engine_refusal(bdb: dict[str, Any], wanted: str) -> str | None:
    """Why the cluster would not move this database to engine version `wanted` in place (None: it
    would, or nothing changes)."""
    running = str(bdb.get("redis_version") or "")
    return engine_change_refusal(running, wanted, None, bool(bdb.get("replication")))


def not_following(redb: RedisEnterpriseDatabase, bdb: dict[str, Any], default_version: str | None) -> str:
    """Why a database whose `redisVersion` is `latest` stays behind the cluster's default ("" when it
    follows, or is being moved there): the in-place upgrade's own refusal (a database without
    replication, another engine)."""
    asked = redb.spec.redis_version
    if not follows_default(asked) or default_version is None:
        return ""
    refusal = _engine_refusal(bdb, default_version)
    if refusal is None:
        return ""
    return (f"redisVersion {asked} is {default_version} in this cluster; the database stays on "
            f"{normalize_version(str(bdb.get('redis_version')))}: {refusal}")


def bdb_update_body(
    redb: RedisEnterpriseDatabase, bdb: dict[str, Any], password: str | None = None,
    client_certs: list[str] | None = None, roles_permissions: list[dict[str, int]] | None = None,
    default_version: str | None = None,
) -> dict[str, Any]:
    """PUT /v1/bdbs/{uid}: only the fields that differ ({} when the bdb is in line with the spec).
    `password` is compared only when given (the API does not show it back reliably); pass it when
    the secret changed. The TLS mode is fixed at creation (the validator refuses a change); a raised
    `redisVersion` upgrades the engine in place (only a change the cluster makes: an older
    operator's REDB whose field it ignored keeps its engine); the client certificates and their
    enforcement follow the spec."""
    desired = desired_settings(redb)
    changes: dict[str, Any] = {}
    # `latest` follows the cluster's default (`default_version`): a newer default upgrades the database
    wanted_version = effective_version(redb.spec.redis_version, default_version)
    bdb_version = str(bdb.get("redis_version") or "")
    if wanted_version and bdb_version and _engine_refusal(bdb, wanted_version) is None \
            and normalize_version(wanted_version) != normalize_version(bdb_version):
        changes["redis_version"] = wanted_version
    for key in ("memory_size", "replication", "shards_count", "eviction_policy"):
        if bdb.get(key) != desired[key]:
            changes[key] = desired[key]
    wanted = {k: v for k, v in desired.items() if k in ("data_persistence", "aof_policy", "snapshot_policy")}
    if _persistence_of(bdb) != wanted:
        changes.update(wanted)
    if password is not None and redb.spec.default_user and bdb.get("authentication_redis_pass") != password:
        changes["authentication_redis_pass"] = password
    if roles_permissions is not None and list(bdb.get("roles_permissions") or []) != roles_permissions:
        changes["roles_permissions"] = roles_permissions
    if client_certs is not None:
        tls = tls_settings(redb, client_certs)
        for key in ("enforce_client_authentication", "authentication_ssl_client_certs"):
            if key in bdb and bdb.get(key) != tls[key]:
                changes[key] = tls[key]
    return changes


def changed_fields(changes: dict[str, Any]) -> list[str]:
    """Names of an update's fields for events and logs (never the values: one is a password)."""
    return sorted(changes)
