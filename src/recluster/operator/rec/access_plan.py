"""What the cluster must be told so its users, roles and Redis ACLs are what REC `spec.managed` declares
(recluster.api.managed_access). Pure: the actual objects (GET /v1/redis_acls, /v1/roles, /v1/users),
the passwords read from the Secrets and what the operator managed before (`status.managed`) in, REST
calls out. Run in three rounds (ACLs, roles, then users, each against a fresh reading, since a user
names roles by uid), deletions last: users, then roles, then ACLs.

Only what the spec declares, or declared before, is touched: objects made through the REST API or the
console are left alone. An entry taken out of the spec, or marked `ensure: absent`, is deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recluster.api.access import BUILTIN_REDIS_ACLS
from recluster.api.managed_access import ManagedAccess


@dataclass(frozen=True)
class Call:
    """One REST call: `method` on /v1/<kind>[/<uid>] with `body`; `what` says it without secrets."""

    method: str
    kind: str
    uid: int | None
    body: dict[str, Any] | None
    what: str


@dataclass
class Record:
    """What the operator manages (kept in `status.managed`): names, and for each user the version of
    its password Secret last set."""

    redis_acls: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: dict[str, Any] | None) -> Record:
        managed = (status or {}).get("managed") or {}
        users = managed.get("users") or []
        return cls(list(managed.get("redisAcls") or []), list(managed.get("roles") or []),
                   {str(u.get("name")): str(u.get("passwordSecretVersion", "")) for u in users
                    if isinstance(u, dict)} if isinstance(users, list) else {})

    def status(self) -> dict[str, Any]:
        # lists, not maps: the status is merge-patched, and a key missing from a map would stay
        return {"redisAcls": sorted(self.redis_acls), "roles": sorted(self.roles),
                "users": [{"name": name, "passwordSecretVersion": version}
                          for name, version in sorted(self.users.items())]}

    def empty(self) -> bool:
        return not (self.redis_acls or self.roles or self.users)


def _by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(o.get("name")): o for o in objects if "uid" in o}


def _rules(text: str) -> str:
    return " ".join(text.split())


def plan_redis_acls(managed: ManagedAccess, actual: list[dict[str, Any]]) -> tuple[list[Call], list[str]]:
    """Creations and updates of the declared ACLs, and the problems (a predefined ACL redeclared
    with other rules)."""
    calls: list[Call] = []
    problems: list[str] = []
    existing = _by_name(actual)
    builtin = {name: rules for name, rules in BUILTIN_REDIS_ACLS.values()}
    for acl in managed.redis_acls:
        if acl.name in builtin:
            if _rules(acl.acl) != builtin[acl.name]:
                problems.append(f"managed.redisAcls '{acl.name}' is predefined as '{builtin[acl.name]}' and "
                                "cannot be changed: give yours another name")
            continue
        current = existing.get(acl.name)
        if current is None:
            calls.append(Call("POST", "redis_acls", None, {"name": acl.name, "acl": acl.acl},
                              f"create Redis ACL {acl.name}"))
        elif _rules(str(current.get("acl", ""))) != _rules(acl.acl):
            calls.append(Call("PUT", "redis_acls", int(current["uid"]), {"acl": acl.acl},
                              f"set the rules of Redis ACL {acl.name}"))
    return calls, problems


def plan_roles(managed: ManagedAccess, actual: list[dict[str, Any]]) -> list[Call]:
    calls: list[Call] = []
    existing = _by_name(actual)
    for role in managed.roles:
        current = existing.get(role.name)
        if current is None:
            calls.append(Call("POST", "roles", None, {"name": role.name, "management": role.management},
                              f"create role {role.name}"))
        elif current.get("management") != role.management:
            calls.append(Call("PUT", "roles", int(current["uid"]), {"management": role.management},
                              f"set role {role.name}'s management to {role.management}"))
    return calls


@dataclass(frozen=True)
class Password:
    """A user's password as its Secret holds it now, and the Secret's version."""

    value: str
    version: str


def plan_users(
    managed: ManagedAccess, actual_users: list[dict[str, Any]], actual_roles: list[dict[str, Any]],
    record: Record, passwords: dict[str, Password], refused: set[str],
) -> tuple[list[Call], list[str], dict[str, str]]:
    """Creations and updates of the present users, the problems (a role or a Secret missing: that
    user waits), and the password versions to record once the calls succeed. `refused`: users whose
    password the cluster refused just now (changed by someone else: set again)."""
    calls: list[Call] = []
    problems: list[str] = []
    versions: dict[str, str] = {}
    existing = _by_name(actual_users)
    role_uids = {name: int(r["uid"]) for name, r in _by_name(actual_roles).items()}
    for user in managed.users:
        if user.ensure == "absent":
            continue
        missing = [name for name in user.roles if name not in role_uids]
        if missing:
            problems.append(f"managed.users '{user.name}': the cluster has no role named "
                            f"{', '.join(repr(m) for m in missing)}")
            continue
        password = passwords.get(user.name)
        if password is None:
            secret = user.password_secret
            problems.append(f"managed.users '{user.name}': no password in Secret "
                            f"'{secret.name if secret else '?'}' key '{secret.key if secret else '?'}'")
            continue
        uids = sorted(role_uids[name] for name in user.roles)
        current = existing.get(user.name)
        if current is None:
            body: dict[str, Any] = {"name": user.name, "password": password.value, "role_uids": uids}
            if user.email:
                body["email"] = user.email
            calls.append(Call("POST", "users", None, body, f"create user {user.name}"))
            versions[user.name] = password.version
            continue
        changes: dict[str, Any] = {}
        if sorted(int(u) for u in current.get("role_uids") or []) != uids:
            changes["role_uids"] = uids
        if user.email is not None and current.get("email", "") != user.email:
            changes["email"] = user.email
        if record.users.get(user.name) != password.version or user.name in refused:
            changes["password"] = password.value
        if changes:
            calls.append(Call("PUT", "users", int(current["uid"]), changes,
                              f"set user {user.name}'s {', '.join(sorted(changes))}"))
        versions[user.name] = password.version
    return calls, problems, versions


def plan_deletions(
    managed: ManagedAccess, record: Record, actual: dict[str, list[dict[str, Any]]]
) -> list[Call]:
    """Users, roles and ACLs the operator managed and the spec no longer declares, and users marked
    absent: users first (a role in use by a user cannot go), ACLs last."""
    present = {u.name for u in managed.users if u.ensure == "present"}
    absent = {u.name for u in managed.users if u.ensure == "absent"}
    wanted = {"users": present, "roles": {r.name for r in managed.roles},
              "redis_acls": {a.name for a in managed.redis_acls}}
    managed_before = {"users": set(record.users) | absent, "roles": set(record.roles),
                      "redis_acls": set(record.redis_acls)}
    calls: list[Call] = []
    for kind, label in (("users", "user"), ("roles", "role"), ("redis_acls", "Redis ACL")):
        for name, obj in sorted(_by_name(actual.get(kind, [])).items()):
            if name in managed_before[kind] and name not in wanted[kind]:
                calls.append(Call("DELETE", kind, int(obj["uid"]), None, f"delete {label} {name}"))
    return calls
