"""The cluster side of a binding, through the REST API: a role of its own (management `none`: no
REST API or console), a user of its own (the binding's name and password, that role) and that
role's Redis ACL in the database's `roles_permissions`. The shards then have the user as an ACL
user; removing it (`ACL DELUSER` on every shard) also closes its open connections.

Every step finds what an earlier attempt made by its deterministic name (`binding_user_name`), so a
grant or a revoke can be repeated after any failure or restart. `roles_permissions` is read,
changed and written back whole, so the changes to one instance's bindings are serialized: callers
hold `lock(instance_id)` around a grant, a revoke or a repoint. What to change is decided by the
pure functions of `binding_permissions`; this module only calls the API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from recluster.broker.binding_permissions import (
    named,
    permissions_of,
    repointed,
    with_permission,
    without_permissions,
)
from recluster.broker.models import Binding, Instance
from recluster.clients.cluster_api import ClusterApi, ClusterApiError

log = logging.getLogger("recluster.broker")
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({409, 429, 500, 502, 503, 504})
# 409s that a retry cannot change: the caller deals with them
FINAL_CONFLICTS = frozenset({"name_already_exists", "role_in_use", "redis_acl_in_use"})
ROLE_MANAGEMENT = "none"  # a binding's user reaches its database, never the REST API or the console


class GrantError(Exception):
    """A grant, revoke or repoint that did not finish; the message is for the platform's user (no
    secrets). `retryable`: the cluster was busy or unreachable until the deadline."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Grants:
    def __init__(self, api: ClusterApi, *, poll_s: float = 0.5) -> None:
        self.api = api
        self.poll_s = poll_s
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, instance_id: str) -> asyncio.Lock:
        """Held around every change to the bindings of one instance (and the plan change that moves
        them to another Redis ACL)."""
        return self._locks.setdefault(instance_id, asyncio.Lock())

    def forget(self, instance_id: str) -> None:
        """The instance is deleted: its lock is no longer needed."""
        lock = self._locks.get(instance_id)
        if lock is not None and not lock.locked():
            del self._locks[instance_id]

    # ---- the three changes ------------------------------------------------------------------

    async def grant(self, instance: Instance, binding: Binding, acl_name: str, deadline: float) -> None:
        """The binding's role, its user (with the recorded password) and the role's ACL on the
        instance's database exist."""
        await _guarded(self._grant(instance, binding, acl_name, deadline))

    async def revoke(self, instance: Instance | None, bindings: list[Binding], deadline: float) -> None:
        """The bindings' users and roles are gone, and their roles from the database's
        `roles_permissions` (first: a role a database names cannot be deleted)."""
        await _guarded(self._revoke(instance, bindings, deadline))

    async def repoint(self, instance: Instance, bindings: list[Binding], acl_name: str,
                      deadline: float) -> None:
        """After a plan change: the bindings' roles have the new plan's ACL on the database."""
        await _guarded(self._repoint(instance, bindings, acl_name, deadline))

    async def _grant(self, instance: Instance, binding: Binding, acl_name: str, deadline: float) -> None:
        assert binding.username is not None and binding.password is not None
        uid = await self._bdb_uid(instance, deadline)
        if uid is None:
            raise GrantError(f"database '{instance.bdb_name}' is not on the cluster")
        acl_uid = await self._acl_uid(acl_name, deadline)
        role_uid = await self._ensure_role(binding.username, deadline)
        await self._ensure_user(binding.username, binding.password, role_uid, deadline)
        bdb = await self._call(deadline, self.api.bdb, uid)
        changed = with_permission(permissions_of(bdb), role_uid, acl_uid)
        if changed is not None:
            await self._call(deadline, self.api.update_bdb, uid, {"roles_permissions": changed})
        log.info("binding %s of instance %s: user %s has '%s' on database %d", binding.id, instance.id,
                 binding.username, acl_name, uid)

    async def _revoke(self, instance: Instance | None, bindings: list[Binding], deadline: float) -> None:
        names = [b.username for b in bindings if b.username is not None]
        if not names:
            return
        roles = await self._call(deadline, self.api.objects, "roles")
        role_uids = [int(r["uid"]) for r in (named(roles, n) for n in names) if r is not None]
        uid = await self._bdb_uid(instance, deadline) if instance is not None else None
        if uid is not None and role_uids:
            try:
                bdb = await self._call(deadline, self.api.bdb, uid)
            except ClusterApiError as exc:
                if exc.status != 404:
                    raise _failed(exc) from exc
            else:
                changed = without_permissions(permissions_of(bdb), role_uids)
                if changed is not None:
                    await self._call(deadline, self.api.update_bdb, uid, {"roles_permissions": changed})
        users = await self._call(deadline, self.api.objects, "users")
        for name in names:
            user = named(users, name)
            if user is not None:
                await self._delete(deadline, "users", int(user["uid"]))
        for role_uid in role_uids:
            await self._delete(deadline, "roles", role_uid)
        log.info("instance %s: user(s) %s removed", instance.id if instance else "?", ", ".join(names))

    async def _repoint(self, instance: Instance, bindings: list[Binding], acl_name: str,
                       deadline: float) -> None:
        names = [b.username for b in bindings if b.username is not None]
        uid = await self._bdb_uid(instance, deadline)
        if not names or uid is None:
            return
        acl_uid = await self._acl_uid(acl_name, deadline)
        roles = await self._call(deadline, self.api.objects, "roles")
        role_uids = [int(r["uid"]) for r in (named(roles, n) for n in names) if r is not None]
        bdb = await self._call(deadline, self.api.bdb, uid)
        changed = repointed(permissions_of(bdb), role_uids, acl_uid)
        if changed is not None:
            await self._call(deadline, self.api.update_bdb, uid, {"roles_permissions": changed})
            log.info("instance %s: %d binding(s) now have '%s'", instance.id, len(role_uids), acl_name)

    # ---- steps ------------------------------------------------------------------------------

    async def _bdb_uid(self, instance: Instance, deadline: float) -> int | None:
        if instance.bdb_uid is not None:
            return instance.bdb_uid
        found = named(await self._call(deadline, self.api.bdbs), instance.bdb_name)
        return int(found["uid"]) if found else None

    async def _acl_uid(self, name: str, deadline: float) -> int:
        acl = named(await self._call(deadline, self.api.objects, "redis_acls"), name)
        if acl is None:
            raise GrantError(f"the plan's Redis ACL '{name}' does not exist on the cluster (GET "
                             "/v1/redis_acls lists them); fix the broker's catalog or create it")
        return int(acl["uid"])

    async def _ensure_role(self, name: str, deadline: float) -> int:
        for _ in range(2):
            role = named(await self._call(deadline, self.api.objects, "roles"), name)
            if role is not None:
                if role.get("management") != ROLE_MANAGEMENT:
                    await self._call(deadline, self.api.update_object, "roles", int(role["uid"]),
                                     {"management": ROLE_MANAGEMENT})
                return int(role["uid"])
            try:
                created = await self._call(deadline, self.api.create_object, "roles",
                                           {"name": name, "management": ROLE_MANAGEMENT})
                return int(created["uid"])
            except ClusterApiError as exc:
                if exc.error_code != "name_already_exists":  # made meanwhile: found on the next look
                    raise _failed(exc) from exc
        raise GrantError(f"role '{name}' cannot be created or found")

    async def _ensure_user(self, name: str, password: str, role_uid: int, deadline: float) -> None:
        """The user exists with this password and only this role (an earlier attempt's user gets the
        recorded password again: the cluster keeps only hashes, so it cannot be compared)."""
        for _ in range(2):
            user = named(await self._call(deadline, self.api.objects, "users"), name)
            if user is not None:
                await self._call(deadline, self.api.update_object, "users", int(user["uid"]),
                                 {"password": password, "role_uids": [role_uid]})
                return
            try:
                await self._call(deadline, self.api.create_object, "users",
                                 {"name": name, "password": password, "role_uids": [role_uid]})
                return
            except ClusterApiError as exc:
                if exc.error_code != "name_already_exists":
                    raise _failed(exc) from exc
        raise GrantError(f"user '{name}' cannot be created or found")

    async def _delete(self, deadline: float, kind: str, uid: int) -> None:
        try:
            await self._call(deadline, self.api.delete_object, kind, uid)
        except ClusterApiError as exc:
            if exc.status != 404:  # gone already: done
                raise _failed(exc) from exc

    async def _call(self, deadline: float, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        """A REST call, retried while the cluster is busy or unreachable, until the deadline. An
        answer a retry cannot change is raised as ClusterApiError (the caller may expect it)."""
        while True:
            try:
                return await method(*args)
            except ClusterApiError as exc:
                if exc.status not in RETRYABLE_STATUS or exc.error_code in FINAL_CONFLICTS:
                    if exc.status in (404, 409):
                        raise
                    raise _failed(exc) from exc
                reason = api_reason(exc)
            except httpx.HTTPError as exc:
                reason = f"cluster API unreachable ({type(exc).__name__})"
            if time.time() + self.poll_s > deadline:
                raise GrantError(f"gave up: {reason}", retryable=True)
            await asyncio.sleep(self.poll_s)


async def _guarded(step: Awaitable[None]) -> None:
    try:
        await step
    except ClusterApiError as exc:  # one the step did not expect (a 404 or 409 it cannot act on)
        raise _failed(exc) from exc


def _failed(exc: ClusterApiError) -> GrantError:
    return GrantError(api_reason(exc))


def api_reason(exc: ClusterApiError) -> str:
    # The API's messages name fields and rules, never values (its own rule); keep them for the user.
    message = str(exc.body.get("message") or exc.body.get("description") or "")
    return f"cluster API {exc.status} {exc.error_code}: {message}".strip()
