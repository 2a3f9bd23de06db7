"""Who may do what. Pure.

- The REST API (and the console, which calls it with the user's credentials): what a management
  level may call (`may_call`) and whether it sees database passwords (`sees_secrets`).
- The databases: which users are ACL users of a database's shards and with which rules
  (`database_users`), from the database's `roles_permissions` and the users' roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from recluster.api.acl_rules import compose
from recluster.node.records import BdbRecord, ClusterState

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What each level may change, as path prefixes; the admin changes everything. Reads are open to every
# level but `none`, except the users and their roles (the admin's).
DATABASE_WRITES = ("/v1/bdbs", "/v1/shards/")
WRITES: dict[str, tuple[str, ...]] = {
    "cluster_member": DATABASE_WRITES,
    "db_member": DATABASE_WRITES,
}
ADMIN_READS = ("/v1/users", "/v1/roles")
OWN_PASSWORD_PATH = "/v1/users/password"  # noqa: S105 (a path) any user changes its own password (it proves the old one)


def may_call(level: str, method: str, path: str) -> bool:
    if level == "admin" or path == OWN_PASSWORD_PATH:
        return True
    if level == "none":
        return False
    if method in READ_METHODS:
        return not path.startswith(ADMIN_READS)
    return path.startswith(WRITES.get(level, ()))


def sees_secrets(level: str) -> bool:
    """Whether bdb views keep `authentication_redis_pass` for this level (members change databases,
    so they may read what they set)."""
    return level in ("admin", "cluster_member", "db_member")


@dataclass(frozen=True)
class DatabaseUser:
    """An ACL user of one database's shards: its name, its sealed password hash (the node opens it),
    and its permission arguments (`acl_rules.compose`)."""

    name: str
    sealed_password: str
    permissions: tuple[str, ...]


def database_users(state: ClusterState, bdb: BdbRecord) -> tuple[DatabaseUser, ...]:
    """Every user one of whose roles has a Redis ACL on `bdb`, sorted by name."""
    rules_by_role: dict[int, list[str]] = {}
    for permission in bdb.roles_permissions:
        acl = state.redis_acls.get(permission.redis_acl_uid)
        if acl is not None and permission.role_uid in state.roles:
            rules_by_role.setdefault(permission.role_uid, []).append(acl.acl)
    users = []
    for user in state.users.values():
        rules = [rule for uid in user.role_uids for rule in rules_by_role.get(uid, ())]
        if rules:
            users.append(DatabaseUser(user.name, user.acl_password, tuple(compose(rules))))
    return tuple(sorted(users, key=lambda u: u.name))
