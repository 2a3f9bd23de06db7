"""How a database's engine version is written, for the REDB's `redisVersion` and the bdb's
`redis_version` alike: `major.minor` for Redis ("8.0", also "redis-8.0"), `<db_type>-major.minor` for
the others ("valkey-8.1"). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_VERSION = re.compile(r"^(?:(redis|valkey)-)?(\d+)\.(\d+)$")
FORMAT = "major.minor for Redis (e.g. 8.0), valkey-major.minor for Valkey (e.g. valkey-8.1)"
REDB_FORMAT = f"{FORMAT}, or latest (the newest Redis the cluster bundles, followed when it changes)"
# REDB redisVersion values that follow the cluster's default version (the newest Redis it bundles)
# instead of naming one: Redis Enterprise's `latest` and `major` (here every bundled Redis is a major)
FOLLOWING = frozenset({"latest", "major"})


def follows_default(requested: str | None) -> bool:
    return requested is not None and requested.strip().lower() in FOLLOWING


def effective_version(requested: str | None, default: str | None) -> str | None:
    """The version a REDB's `redisVersion` asks for: the cluster's `default` for `latest`/`major` (None
    while the default is not known), the value itself otherwise (None: not set)."""
    return default if follows_default(requested) else requested


def normalize_version(requested: str) -> str | None:
    """A version in its one spelling ("redis-8.0" and "8.0" -> "8.0", "Valkey-8.1" -> "valkey-8.1"),
    or None when it is not `[<db_type>-]major.minor`."""
    found = _VERSION.fullmatch(requested.strip().lower())
    if found is None:
        return None
    db_type = found[1] or "redis"
    short = f"{int(found[2])}.{int(found[3])}"
    return short if db_type == "redis" else f"{db_type}-{short}"


def version_name(db_type: str, version: str) -> str:
    """The name of a `{db_type, version}` entry (supported_database_versions, bundledDatabaseVersions)."""
    return version if db_type == "redis" else f"{db_type}-{version}"


def bundled_names(bundled: Iterable[Mapping[str, Any]]) -> list[str]:
    """The version names of a REC's `status.bundledDatabaseVersions` entries ({dbType, version})."""
    return [version_name(str(b.get("dbType") or "redis"), str(b.get("version"))) for b in bundled
            if b.get("version")]


def default_name(bundled: Iterable[Mapping[str, Any]]) -> str | None:
    """The version name of the entry a REC's `status.bundledDatabaseVersions` marks `isDefault`."""
    for entry in bundled:
        if entry.get("isDefault") and entry.get("version"):
            return version_name(str(entry.get("dbType") or "redis"), str(entry["version"]))
    return None


def bundled_versions(cluster: Mapping[str, Any]) -> list[dict[str, Any]]:
    """REC `status.bundledDatabaseVersions` from GET /v1/cluster: [{dbType, version, isDefault}]."""
    default = cluster.get("default_provisioned_redis_version")
    return [
        {"dbType": entry["db_type"], "version": entry["version"],
         "isDefault": version_name(entry["db_type"], entry["version"]) == default}
        for entry in cluster.get("supported_database_versions") or []
        if entry.get("db_type") and entry.get("version")
    ]
