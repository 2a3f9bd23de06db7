"""The REDB's status, computed from what the cluster says about its database. Pure: the clock is an
argument; nothing secret goes in (the bdb's password field is never read here)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from recluster.api.conditions import ConditionType, invalid_spec_status, spec_is_valid, updated_conditions


@dataclass(frozen=True)
class DatabaseView:
    """What one reconcile saw of the database (None/empty before it exists)."""

    bdb: dict[str, Any] | None
    shards: list[dict[str, Any]]
    action_status: str | None
    endpoint_host: str | None  # the stable Service name clients use
    cluster: str
    message: str = ""
    warnings: str = ""  # the spec's fields the operator does not act on (one message)


def database_status(body: dict[str, Any], view: DatabaseView, now: str) -> dict[str, Any]:
    """The whole status of a valid REDB."""
    generation = body["metadata"].get("generation")
    bdb = view.bdb or {}
    state = str(bdb.get("status") or "") if view.bdb is not None else ""
    active = state == "active"
    message = view.message or upgrade_message(bdb)
    conditions = updated_conditions(
        body,
        [
            spec_is_valid(view.warnings),
            (ConditionType.READY, "True" if active else "False", state or "Pending",
             message or (f"database is {state}" if state else "database not created yet")),
            (ConditionType.PROGRESSING, "False" if active else "True", state or "Pending",
             message or ("in line with the spec" if active else "converging")),
        ],
        now,
    )
    status: dict[str, Any] = {
        "specStatus": "Valid",
        "status": state,
        "observedGeneration": generation,
        "redisEnterpriseCluster": view.cluster,
        "conditions": conditions,
    }
    if view.bdb is not None:
        port = bdb.get("port")
        status["databaseUID"] = str(bdb.get("uid"))
        status["shardStatuses"] = dict(Counter(str(s.get("status") or "unknown") for s in view.shards))
        if port:
            status["internalEndpoints"] = [{"host": view.endpoint_host, "port": port}]
        for key, field in (
            ("lastActionUid", "action_uid"),
            ("version", "version"),
            ("createdTime", "created_time"),
            ("lastUpdated", "last_changed_time"),
        ):
            if bdb.get(field):
                status[key] = str(bdb[field])
        if view.action_status:
            status["lastActionStatus"] = view.action_status
    return status


def upgrade_message(bdb: dict[str, Any]) -> str:
    """While the cluster upgrades the database's engine in place (the bdb's `upgrade_from`): what
    moves, and that `status.version` follows only once every shard runs the new one."""
    source, target = bdb.get("upgrade_from"), bdb.get("redis_version")
    if not source or not target:
        return ""
    return (f"upgrading the engine from {source} to {target}: replicas first, then a failover, then the "
            f"old master; status.version says {target} once every shard runs it")


def invalid_status(body: dict[str, Any], message: str, now: str) -> dict[str, Any]:
    """specStatus Invalid; everything the cluster said before is kept."""
    return invalid_spec_status(body, message, now)


def status_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, str]]:
    """(reason, message) of the events a status change deserves."""
    old = old or {}
    events: list[tuple[str, str]] = []
    if old.get("status", "") != new.get("status", old.get("status", "")):
        events.append(
            ("StatusChange", f"database status {old.get('status') or 'unknown'} -> {new.get('status')}")
        )
    if old.get("version") and new.get("version") and old["version"] != new["version"]:
        events.append(("EngineUpgraded", f"every shard runs {new['version']} (was {old['version']})"))
    if old.get("specStatus") != new.get("specStatus") and new.get("specStatus") == "Valid":
        events.append(("SpecValid", "the spec is valid"))
    return events
