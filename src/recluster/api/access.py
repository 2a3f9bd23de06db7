"""Who may use a cluster: the facts of its users, roles and Redis ACLs that both the cluster's REST
API (recluster.node.users) and the operator's declared access (REC `spec.managed`) check. Pure."""

from __future__ import annotations

import re
from typing import Literal

Management = Literal["admin", "cluster_member", "cluster_viewer", "db_member", "db_viewer", "none"]
MANAGEMENT_LEVELS: tuple[str, ...] = ("none", "db_viewer", "cluster_viewer", "db_member", "cluster_member",
                                      "admin")  # weakest first
# A user's name is its Redis ACL username on the databases: what `AUTH <name> <password>` accepts
USER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
# The cluster's own logins to a database's shards, one per job (recluster.node.shard_users gives each
# only the commands its job needs): the node's probes and settings, replication, Sentinel. A database
# made before the last two existed logs in as its default user, or as INTERNAL_SHARD_USER with every
# command when its default user is off. An import (POST /v1/bdbs/<uid>/actions/import) writes the
# backup's keys as INTERNAL_IMPORT_USER.
INTERNAL_SHARD_USER = "recluster-internal"
INTERNAL_REPLICATION_USER = "recluster-replication"
INTERNAL_SENTINEL_USER = "recluster-sentinel"
INTERNAL_IMPORT_USER = "recluster-import"
INTERNAL_USERS = (INTERNAL_SHARD_USER, INTERNAL_REPLICATION_USER, INTERNAL_SENTINEL_USER,
                  INTERNAL_IMPORT_USER)
# Names a user cannot take: Redis's own user and the cluster's internal users on shards and sentinels
RESERVED_USER_NAMES = frozenset({"default", "recluster", *INTERNAL_USERS})
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 512
MAX_NAME_LENGTH = 64

# Redis Enterprise's predefined Redis ACLs, present in every cluster with these uids
BUILTIN_REDIS_ACLS: dict[int, tuple[str, str]] = {
    1: ("Full Access", "+@all ~*"),
    2: ("Read Only", "+@read ~*"),
    3: ("Not Dangerous", "+@all -@dangerous ~*"),
}


def name_problem(value: str) -> str | None:
    """A role's or a Redis ACL's name."""
    if not 1 <= len(value.strip()) <= MAX_NAME_LENGTH:
        return f"must be 1-{MAX_NAME_LENGTH} characters, not only spaces"
    return None


def user_name_problem(value: str) -> str | None:
    if not USER_NAME_RE.fullmatch(value):
        return ("must be 1-64 characters of A-Z a-z 0-9 . _ @ + - starting with a letter or digit "
                "(it is the user's name on the databases)")
    if value.lower() in RESERVED_USER_NAMES:
        return f"'{value}' is reserved for the cluster's own use"
    return None


def password_problem(value: str) -> str | None:
    if not MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        return f"must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters"
    return None
