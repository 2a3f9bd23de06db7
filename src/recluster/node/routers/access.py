"""Users, roles and Redis ACLs: /v1/users, /v1/roles, /v1/redis_acls (Redis Enterprise's shapes).
Changes run on the leader (a follower forwards them); only the admin may make them, except a user
changing its own password."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends

from recluster.node import access_operations as ops
from recluster.node.auth import verify_password
from recluster.node.deps import Daemon, authenticated
from recluster.node.errors import ApiError
from recluster.node.schemas import AUTHENTICATED, doc
from recluster.node.users import (
    PasswordChange,
    RedisAclCreate,
    RedisAclUpdate,
    RoleCreate,
    RoleUpdate,
    UserCreate,
    UserUpdate,
)

router = APIRouter(tags=["users"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


def _found(record: dict[str, Any] | None, what: str, uid: int) -> dict[str, Any]:
    if record is None:
        raise ApiError(404, f"{what}_not_exist", f"{what.replace('_', ' ')} {uid} does not exist")
    return record


@router.get("/v1/users", **doc(None))
async def list_users(daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    return [ops.user_view(state, u) for u in sorted(state.users.values(), key=lambda u: u.uid)]


@router.get("/v1/users/{uid}", **doc(None, 400, 404))
async def get_user(uid: int, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    user = state.users.get(uid)
    return _found(ops.user_view(state, user) if user else None, "user", uid)


@router.post("/v1/users", **doc(None, 400, 409))
async def create_user(body: UserCreate, daemon: Daemon) -> dict[str, Any]:
    # the password is hashed (scrypt, ~0.3 s) off the event loop
    change = await asyncio.to_thread(ops.create_user, body, daemon.acl_secrets())
    return await daemon.write(change, f"create user '{body.name}'")


@router.put("/v1/users/password", **doc(None, 400))
async def change_password(body: PasswordChange, daemon: Daemon) -> dict[str, Any]:
    """A user's (or the cluster admin's) own password, proving the old one."""
    stored = ops.stored_password_hash(await daemon.state(), body.username)
    if stored is None or not await asyncio.to_thread(verify_password, body.old_password, stored):
        raise ApiError(401, "unauthorized", "wrong username or old password")
    change = await asyncio.to_thread(ops.change_own_password, body, daemon.acl_secrets(), stored, time.time())
    await daemon.write(change, "change a password")
    return {}


@router.put("/v1/users/{uid}", **doc(None, 400, 404, 409))
async def update_user(uid: int, body: UserUpdate, daemon: Daemon) -> dict[str, Any]:
    change = await asyncio.to_thread(ops.update_user, uid, body, daemon.acl_secrets())
    return await daemon.write(change, f"update user {uid}")


@router.delete("/v1/users/{uid}", **doc(None, 400, 404))
async def delete_user(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.delete_user(uid), f"delete user {uid}")


@router.get("/v1/roles", **doc(None))
async def list_roles(daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    return [ops.role_view(r) for r in sorted(state.roles.values(), key=lambda r: r.uid)]


@router.get("/v1/roles/{uid}", **doc(None, 400, 404))
async def get_role(uid: int, daemon: Daemon) -> dict[str, Any]:
    role = (await daemon.state()).roles.get(uid)
    return _found(ops.role_view(role) if role else None, "role", uid)


@router.post("/v1/roles", **doc(None, 400, 409))
async def create_role(body: RoleCreate, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.create_role(body), f"create role '{body.name}'")


@router.put("/v1/roles/{uid}", **doc(None, 400, 404, 409))
async def update_role(uid: int, body: RoleUpdate, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.update_role(uid, body), f"update role {uid}")


@router.delete("/v1/roles/{uid}", **doc(None, 400, 404, 409))
async def delete_role(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.delete_role(uid), f"delete role {uid}")


@router.get("/v1/redis_acls", **doc(None))
async def list_redis_acls(daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    return [ops.redis_acl_view(a) for a in sorted(state.redis_acls.values(), key=lambda a: a.uid)]


@router.get("/v1/redis_acls/{uid}", **doc(None, 400, 404))
async def get_redis_acl(uid: int, daemon: Daemon) -> dict[str, Any]:
    acl = (await daemon.state()).redis_acls.get(uid)
    return _found(ops.redis_acl_view(acl) if acl else None, "redis_acl", uid)


@router.post("/v1/redis_acls", **doc(None, 400, 409))
async def create_redis_acl(body: RedisAclCreate, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.create_redis_acl(body), f"create Redis ACL '{body.name}'")


@router.put("/v1/redis_acls/{uid}", **doc(None, 400, 404, 406, 409))
async def update_redis_acl(uid: int, body: RedisAclUpdate, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.update_redis_acl(uid, body), f"update Redis ACL {uid}")


@router.delete("/v1/redis_acls/{uid}", **doc(None, 400, 404, 406, 409))
async def delete_redis_acl(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await daemon.write(ops.delete_redis_acl(uid), f"delete Redis ACL {uid}")
