"""Changes to users, roles and Redis ACLs (run on the leader through the CCS write path, checked
first so bad input changes nothing), and their views (Redis Enterprise's shapes; a password or its
hashes never leave the cluster state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recluster.api.access import BUILTIN_REDIS_ACLS
from recluster.node.acl_secrets import AclSecrets
from recluster.node.auth import acl_password, hash_password
from recluster.node.ccs import utcnow
from recluster.node.errors import ApiError
from recluster.node.records import ClusterState
from recluster.node.users import (
    PasswordChange,
    RedisAclCreate,
    RedisAclRecord,
    RedisAclUpdate,
    RoleCreate,
    RoleRecord,
    RoleUpdate,
    UserCreate,
    UserRecord,
    UserUpdate,
    management_of,
)

Change = Callable[[ClusterState], dict[str, Any]]
# how long the cluster admin's previous password still logs in after PUT /v1/users/password
ADMIN_SWITCH_OVER_S = 600.0


# ---- views --------------------------------------------------------------------------------------


def user_view(state: ClusterState, user: UserRecord) -> dict[str, Any]:
    return {"uid": user.uid, "name": user.name, "email": user.email, "role": management_of(user, state.roles),
            "role_uids": list(user.role_uids), "email_alerts": user.email_alerts, "status": "active",
            "auth_method": user.auth_method, "password_issue_date": user.password_issue_date}


def role_view(role: RoleRecord) -> dict[str, Any]:
    return {"uid": role.uid, "name": role.name, "management": role.management}


def redis_acl_view(acl: RedisAclRecord) -> dict[str, Any]:
    return {"uid": acl.uid, "name": acl.name, "acl": acl.acl}


# ---- checks -------------------------------------------------------------------------------------


def _user(state: ClusterState, uid: int) -> UserRecord:
    user = state.users.get(uid)
    if user is None:
        raise ApiError(404, "user_not_exist", f"user {uid} does not exist")
    return user


def _role(state: ClusterState, uid: int) -> RoleRecord:
    role = state.roles.get(uid)
    if role is None:
        raise ApiError(404, "role_not_exist", f"role {uid} does not exist")
    return role


def _acl(state: ClusterState, uid: int) -> RedisAclRecord:
    acl = state.redis_acls.get(uid)
    if acl is None:
        raise ApiError(404, "redis_acl_not_exist", f"Redis ACL {uid} does not exist")
    return acl


def _check_roles(state: ClusterState, role_uids: list[int]) -> None:
    missing = sorted(set(role_uids) - set(state.roles))
    if missing:
        raise ApiError(400, "role_not_exist", f"role_uids: no role has uid {', '.join(map(str, missing))}",
                       "role_uids")


def _check_unique_user(state: ClusterState, name: str, email: str, uid: int | None = None) -> None:
    for other in state.users.values():
        if other.uid == uid:
            continue
        taken = {other.name.lower(), other.email.lower()} - {""}
        if name.lower() in taken:
            raise ApiError(409, "name_already_exists", f"name: a user named '{name}' exists already", "name")
        if email and email.lower() in taken:
            raise ApiError(409, "email_already_exists", f"email: a user with '{email}' exists already",
                           "email")
    if name.lower() == state.cluster.username.lower() or email.lower() == state.cluster.username.lower():
        raise ApiError(409, "name_already_exists", "name: the cluster's admin has that name", "name")


def _check_unique_name(records: dict[int, Any], name: str, what: str, uid: int | None = None) -> None:
    if any(r.name.lower() == name.lower() and r.uid != uid for r in records.values()):
        raise ApiError(409, "name_already_exists", f"name: a {what} named '{name}' exists already", "name")


def _used_by(state: ClusterState, role_uid: int | None = None, acl_uid: int | None = None) -> list[str]:
    return sorted(bdb.name for bdb in state.bdbs.values() for p in bdb.roles_permissions
                  if p.role_uid == role_uid or p.redis_acl_uid == acl_uid)


# ---- changes ------------------------------------------------------------------------------------


def create_user(request: UserCreate, secrets: AclSecrets) -> Change:
    # the hashes are made here, off the write path's retries (scrypt costs ~50 ms)
    password_hash, sealed = hash_password(request.password), secrets.seal(acl_password(request.password))

    def change(state: ClusterState) -> dict[str, Any]:
        _check_unique_user(state, request.name, request.email)
        _check_roles(state, request.role_uids)
        uid = state.allocate("user", state.users)
        now = utcnow()
        state.users[uid] = UserRecord(
            uid=uid, name=request.name, email=request.email, password_hash=password_hash, acl_password=sealed,
            role_uids=request.role_uids, role=request.role, email_alerts=request.email_alerts,
            auth_method=request.auth_method, password_issue_date=now, created_time=now)
        return user_view(state, state.users[uid])

    return change


def update_user(uid: int, request: UserUpdate, secrets: AclSecrets) -> Change:
    hashes = ((hash_password(request.password), secrets.seal(acl_password(request.password)))
              if request.password is not None else None)

    def change(state: ClusterState) -> dict[str, Any]:
        user = _user(state, uid)
        if request.name is not None and request.name != user.name:
            raise ApiError(400, "invalid_parameter", "name: a user's name cannot be changed (it is its "
                           "name on the databases); create another user", "name")
        if request.email is not None:
            _check_unique_user(state, user.name, request.email, uid)
            user.email = request.email
        if request.role_uids is not None:
            _check_roles(state, request.role_uids)
            user.role_uids = request.role_uids
        if request.role is not None:
            user.role = request.role
        if request.email_alerts is not None:
            user.email_alerts = request.email_alerts
        if hashes is not None:
            user.password_hash, user.acl_password = hashes
            user.password_issue_date = utcnow()
        return user_view(state, user)

    return change


def stored_password_hash(state: ClusterState, username: str) -> str | None:
    """The hash the old password of PUT /v1/users/password is checked against: the cluster admin's
    or a user's (by name or email)."""
    if username == state.cluster.username:
        return state.cluster.password_hash
    user = next((u for u in state.users.values() if username in (u.name, u.email)), None)
    return user.password_hash if user else None


def change_own_password(request: PasswordChange, secrets: AclSecrets, checked_hash: str,
                        now: float) -> Change:
    """PUT /v1/users/password, the old password already checked against `checked_hash` (off the
    write path: scrypt). The admin's old password stays valid for ADMIN_SWITCH_OVER_S, so whoever
    still holds it (the rigger, the broker, a console session) has time to read the new one."""
    new_hash = hash_password(request.new_password)
    sealed = secrets.seal(acl_password(request.new_password))

    def change(state: ClusterState) -> dict[str, Any]:
        if stored_password_hash(state, request.username) != checked_hash:  # changed meanwhile
            raise ApiError(409, "password_changed", "the password changed meanwhile; retry with the new one")
        if request.username == state.cluster.username:
            cluster = state.cluster
            cluster.previous_password_hash, cluster.previous_password_until = cluster.password_hash, (
                now + ADMIN_SWITCH_OVER_S)
            cluster.password_hash = new_hash
            return {}
        user = next(u for u in state.users.values() if request.username in (u.name, u.email))
        user.password_hash, user.acl_password = new_hash, sealed
        user.password_issue_date = utcnow()
        return user_view(state, user)

    return change


def delete_user(uid: int) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        _user(state, uid)
        del state.users[uid]
        return {}

    return change


def create_role(request: RoleCreate) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        _check_unique_name(state.roles, request.name, "role")
        uid = state.allocate("role", state.roles)
        state.roles[uid] = RoleRecord(uid=uid, name=request.name, management=request.management)
        return role_view(state.roles[uid])

    return change


def update_role(uid: int, request: RoleUpdate) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        role = _role(state, uid)
        if request.name is not None:
            _check_unique_name(state.roles, request.name, "role", uid)
            role.name = request.name
        if request.management is not None:
            role.management = request.management
        return role_view(role)

    return change


def delete_role(uid: int) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        _role(state, uid)
        databases = _used_by(state, role_uid=uid)
        users = sorted(u.name for u in state.users.values() if uid in u.role_uids)
        if databases or users:
            raise ApiError(409, "role_in_use", f"role {uid} is in use (databases: "
                           f"{', '.join(databases) or '-'}; users: {', '.join(users) or '-'}); "
                           "remove it from them first")
        del state.roles[uid]
        return {}

    return change


def create_redis_acl(request: RedisAclCreate) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        _check_unique_name(state.redis_acls, request.name, "Redis ACL")
        uid = state.allocate("redis_acl", state.redis_acls)
        state.redis_acls[uid] = RedisAclRecord(uid=uid, name=request.name, acl=" ".join(request.acl.split()))
        return redis_acl_view(state.redis_acls[uid])

    return change


def _not_builtin(uid: int) -> None:
    if uid in BUILTIN_REDIS_ACLS:
        raise ApiError(406, "redis_acl_builtin", f"Redis ACL {uid} ('{BUILTIN_REDIS_ACLS[uid][0]}') is "
                       "predefined and cannot be changed or deleted; create another one")


def update_redis_acl(uid: int, request: RedisAclUpdate) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        acl = _acl(state, uid)
        _not_builtin(uid)
        if request.name is not None:
            _check_unique_name(state.redis_acls, request.name, "Redis ACL", uid)
            acl.name = request.name
        if request.acl is not None:
            acl.acl = " ".join(request.acl.split())
        return redis_acl_view(acl)

    return change


def delete_redis_acl(uid: int) -> Change:
    def change(state: ClusterState) -> dict[str, Any]:
        _acl(state, uid)
        _not_builtin(uid)
        databases = _used_by(state, acl_uid=uid)
        if databases:
            raise ApiError(409, "redis_acl_in_use", f"Redis ACL {uid} is given to roles on databases "
                           f"{', '.join(databases)}; remove it from their roles_permissions first")
        del state.redis_acls[uid]
        return {}

    return change
