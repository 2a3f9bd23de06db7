"""REC `spec.managed` kept in the cluster: reads the passwords from their Secrets and the cluster's
users, roles and Redis ACLs, asks recluster.operator.rec.access_plan what to change, makes the calls
through a ready node's REST API, and returns what it now manages for `status.managed`. A drift (a
managed object changed or deleted through the REST API or the console, a password changed there) is
undone on the next reconcile; a password is checked against the cluster every `VERIFY_SECONDS`."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from recluster.api.access import BUILTIN_REDIS_ACLS
from recluster.api.managed_access import ManagedAccess
from recluster.api.rec import RedisEnterpriseCluster
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.clients.kubernetes import Kube, secret_value
from recluster.clients.node_api import node_api
from recluster.operator.rec.access_plan import (
    Call,
    Password,
    Record,
    plan_deletions,
    plan_redis_acls,
    plan_roles,
    plan_users,
)
from recluster.operator.rec.cluster import ClusterClient, ClusterView, NodePod
from recluster.operator.status import post_event

log = logging.getLogger(__name__)

VERIFY_SECONDS = 300.0  # how often a managed user's password is tried against the cluster


async def keep_access(
    kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, view: ClusterView, client: ClusterClient
) -> dict[str, Any] | None:
    """`status.managed` after this pass (None: nothing is or was managed)."""
    record = Record.of(body.get("status"))
    if rec.spec.managed is None and record.empty():
        return None
    managed = rec.spec.managed or ManagedAccess()
    previous = (body.get("status") or {}).get("managed")
    via = next((m for m in view.members if m.ready and not m.deleting and m.ip), None)
    if via is None:
        return previous if isinstance(previous, dict) else record.status()
    passwords, problems = await _passwords(kube, rec, managed)
    done: list[str] = []
    failed_deletions: set[tuple[str, str]] = set()
    versions: dict[str, str] = {}
    try:
        async with client.api(via) as api:
            calls, acl_problems = plan_redis_acls(managed, await api.objects("redis_acls"))
            problems += acl_problems + await _run(api, calls, done)
            problems += await _run(api, plan_roles(managed, await api.objects("roles")), done)
            users, roles = await api.objects("users"), await api.objects("roles")
            refused = await _refused_passwords(client, via, managed, users, record, passwords)
            calls, user_problems, versions = plan_users(managed, users, roles, record, passwords, refused)
            failed_users = {c.body.get("name") if c.body else None for c in calls}
            call_problems = await _run(api, calls, done)
            if call_problems:  # a failed user call: its version is not recorded, so it is tried again
                versions = {n: v for n, v in versions.items() if n not in failed_users or _ran(done, n)}
            problems += user_problems + call_problems
            actual = {kind: await api.objects(kind) for kind in ("users", "roles", "redis_acls")}
            deletions = plan_deletions(managed, record, actual)
            for call in deletions:
                problem = await _call(api, call)
                if problem:
                    problems.append(problem)
                    failed_deletions.add((call.kind, call.what.rsplit(" ", 1)[-1]))
                else:
                    done.append(call.what)
    except (ClusterApiError, httpx.HTTPError, OSError) as exc:
        log.warning("cluster %s/%s: managed access not kept this time: %s", rec.namespace, rec.name, exc)
        return previous if isinstance(previous, dict) else record.status()
    new = Record(
        redis_acls=[a.name for a in managed.redis_acls if a.name not in _builtin_names()]
        + [n for k, n in failed_deletions if k == "redis_acls"],
        roles=[r.name for r in managed.roles] + [n for k, n in failed_deletions if k == "roles"],
        users={**{n: v for n, v in record.users.items() if ("users", n) in failed_deletions}, **versions},
    )
    status = {**new.status(), "problems": problems}
    if done:
        await post_event(kube, body, "Normal", "ManagedAccess", "; ".join(done)[:1000])
    if problems and (not isinstance(previous, dict) or previous.get("problems") != problems):
        await post_event(kube, body, "Warning", "ManagedAccessProblem", "; ".join(problems)[:1000])
    return status


def _builtin_names() -> set[str]:
    return {name for name, _ in BUILTIN_REDIS_ACLS.values()}


def _ran(done: list[str], user: str) -> bool:
    return any(what.startswith((f"create user {user}", f"set user {user}'s")) for what in done)


async def _passwords(
    kube: Kube, rec: RedisEnterpriseCluster, managed: ManagedAccess
) -> tuple[dict[str, Password], list[str]]:
    passwords: dict[str, Password] = {}
    for user in managed.users:
        secret_ref = user.password_secret
        if user.ensure != "present" or secret_ref is None:
            continue
        secret = await kube.get("v1", "Secret", rec.namespace, secret_ref.name)
        value = secret_value(secret, secret_ref.key) if secret else ""
        if value:
            version = str(((secret or {}).get("metadata") or {}).get("resourceVersion") or "")
            passwords[user.name] = Password(value, version)
    return passwords, []


async def _refused_passwords(
    client: ClusterClient, via: NodePod, managed: ManagedAccess, users: list[dict[str, Any]],
    record: Record, passwords: dict[str, Password],
) -> set[str]:
    """The managed users whose password (unchanged in its Secret) the cluster no longer accepts:
    someone set another. Each is tried every VERIFY_SECONDS (a TLS connection and a hash check)."""
    existing = {str(u.get("name")) for u in users}
    refused: set[str] = set()
    now = time.monotonic()
    for user in managed.users:
        password = passwords.get(user.name)
        if (user.ensure != "present" or password is None or user.name not in existing
                or record.users.get(user.name) != password.version
                or now - client.verified_at.get(user.name, -VERIFY_SECONDS) < VERIFY_SECONDS):
            continue
        assert via.ip is not None
        async with node_api(via.ip, client.server_name(via), client.ca_pem, user.name, password.value) as api:
            try:
                await api.cluster()
            except ClusterApiError as exc:
                if exc.status == 401:
                    refused.add(user.name)
            except (httpx.HTTPError, OSError):
                continue
        client.verified_at[user.name] = now
    return refused


async def _call(api: ClusterApi, call: Call) -> str | None:
    """Make one call; the problem (without secrets) when the cluster refuses it."""
    try:
        if call.method == "POST":
            await api.create_object(call.kind, call.body or {})
        elif call.method == "PUT":
            assert call.uid is not None
            await api.update_object(call.kind, call.uid, call.body or {})
        else:
            assert call.uid is not None
            await api.delete_object(call.kind, call.uid)
    except ClusterApiError as exc:
        return f"cannot {call.what}: {exc.body.get('message', exc.error_code)}"
    return None


async def _run(api: ClusterApi, calls: list[Call], done: list[str]) -> list[str]:
    problems = []
    for call in calls:
        problem = await _call(api, call)
        if problem:
            problems.append(problem)
        else:
            done.append(call.what)
    return problems
