"""Users, roles and Redis ACLs on a real loopback cluster with real redis-py clients: the REST API
keeps them (no password or hash ever shown), authorises callers by role, and every shard of a
database (master and replica, before and after a failover) lets each user do exactly what its roles'
ACLs allow; a changed rule applies to live shards, a deleted user's connections are closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis
from redis.sentinel import Sentinel
from tests.integration.node.support import closed_by_server

from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "carol": "carol-password-333",
             "dave": "dave-password-4444"}


async def eventually(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Until `check` is true (a Redis error counts as not yet)."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            if await check():
                return
        except redis.RedisError as exc:
            last = exc
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what} (last: {last!r})"
        await asyncio.sleep(0.3)


def client_of(sentinel: Sentinel, user: str) -> redis.Redis:
    return sentinel.master_for("acl-db", username=user, password=PASSWORDS[user], socket_timeout=2.0)


async def run(call: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(call)


async def denied(call: Callable[[], Any], error: type[Exception]) -> bool:
    try:
        await run(call)
    except error:
        return True
    return False


async def internal_logins_hold(sentinel: Sentinel, name: str, admin: redis.Redis,
                                database_password: str | None, default_user_on: bool) -> None:
    """The cluster's own connections to the master of `name` (its replica's link, the sentinels, the
    nodes' probes) each log in as their own internal user, which has only its job's commands and no
    key; the database's password opens none of them. `admin`: a client of a user with every command."""
    users = {str(user) for user in await run(lambda: admin.acl_users())}
    assert {"recluster-internal", "recluster-replication", "recluster-sentinel"} <= users
    dry = {user: await run(lambda u=user: admin.execute_command("ACL", "DRYRUN", u, "GET", "k"))
           for user in ("recluster-internal", "recluster-replication", "recluster-sentinel")}
    assert all("no permissions" in str(answer) for answer in dry.values()), dry
    replication = await run(lambda: admin.acl_getuser("recluster-replication"))
    assert set(replication["commands"]) == {"+psync", "+replconf", "+ping"}, replication
    host, port = await run(lambda: sentinel.discover_master(name))
    for user in ("recluster-internal", "recluster-replication", "recluster-sentinel"):
        refused = redis.Redis(host, port, username=user, password=database_password or "x",
                              socket_timeout=2.0)
        assert await denied(refused.ping, redis.exceptions.AuthenticationError), user

    async def every_job_logged_in() -> bool:
        clients = await run(lambda: admin.client_list())
        by_user = {client["user"] for client in clients}
        replica_links = [c for c in clients if "S" in c["flags"]]
        return (bool(replica_links) and all(c["user"] == "recluster-replication" for c in replica_links)
                and {"recluster-sentinel", "recluster-internal"} <= by_user)

    await eventually("the replica, the sentinels and the probes each log in as their own user",
                     every_job_logged_in)
    if default_user_on:
        # only the test's own clients use the database's default user
        cluster_own = [c for c in await run(lambda: admin.client_list())
                       if c["user"] == "default" and c["name"].startswith("sentinel")]
        assert not cluster_own


async def test_users_roles_and_acls_reach_every_shard_and_follow_changes(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(1) as api:  # a follower: writes are forwarded to the leader
        reader = await api.create_object("roles", {"name": "reader", "management": "none"})
        writer = await api.create_object("roles", {"name": "writer", "management": "db_member"})
        viewer = await api.create_object("roles", {"name": "viewer", "management": "db_viewer"})
        acls = {a["name"]: a["uid"] for a in await api.objects("redis_acls")}
        assert {"Full Access", "Read Only", "Not Dangerous"} <= set(acls)
        users = {}
        for name, role in (("alice", reader), ("bob", writer), ("carol", None), ("dave", viewer)):
            body = {"name": name, "password": PASSWORDS[name], "email": f"{name}@example.org",
                    "role_uids": [role["uid"]] if role else []}
            users[name] = await api.create_object("users", body)
        bdb = await api.create_bdb({
            "name": "acl-db", "memory_size": 32 * 1024 * 1024, "replication": True,
            "authentication_redis_pass": "acl-db-default-pw",
            "roles_permissions": [{"role_uid": reader["uid"], "redis_acl_uid": acls["Read Only"]},
                                  {"role_uid": writer["uid"], "redis_acl_uid": acls["Full Access"]}]})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        listed = await api.objects("users")

    # nothing secret in the users' views
    assert {u["name"] for u in listed} == set(PASSWORDS)
    for view in listed:
        assert not {"password", "password_hash", "acl_password"} & set(view)
        assert not any(secret in str(view) for secret in PASSWORDS.values())
    assert bdb["roles_permissions"] and bdb["default_user"] is True

    sentinel = Sentinel(cluster3.sentinels(), socket_timeout=1.0)
    alice, bob, carol = (client_of(sentinel, n) for n in ("alice", "bob", "carol"))
    await eventually("bob may write", lambda: run(lambda: bob.set("k", "v") is True))
    assert await run(lambda: alice.get("k")) == b"v"
    assert await denied(lambda: alice.set("k", "x"), redis.exceptions.NoPermissionError)
    await internal_logins_hold(sentinel, "acl-db", bob, "acl-db-default-pw", default_user_on=True)
    assert await denied(lambda: carol.get("k"), redis.exceptions.AuthenticationError)

    # the REST API authorises by role: a db_viewer reads (without the database's password), changes
    # nothing and does not see the users; a user whose role is `none` is refused
    base = cluster3.url(0)
    async with ClusterApi(base, "dave@example.org", PASSWORDS["dave"]) as dave_api:
        seen = await dave_api.bdb(bdb["uid"])
        assert "authentication_redis_pass" not in seen and seen["name"] == "acl-db"
        for method, path, body in (("PUT", f"/v1/bdbs/{bdb['uid']}", {"memory_size": 1}),
                                   ("GET", "/v1/users", None)):
            with pytest.raises(ClusterApiError) as refused:
                await dave_api.request(method, path, body)
            assert refused.value.status == 403
    async with ClusterApi(base, "alice", PASSWORDS["alice"]) as alice_api:
        with pytest.raises(ClusterApiError) as refused:
            await alice_api.bdbs()
        assert refused.value.status == 403
    async with httpx.AsyncClient(verify=False) as http:  # noqa: S501 (the test's own loopback cluster)
        wrong = await http.get(f"{base}/v1/bdbs", auth=("alice", "not-her-password"))
        assert wrong.status_code == 401 and "not-her-password" not in wrong.text

    # a new rule reaches the live shards: alice may now write keys under cache:
    async with cluster3.api(0) as api:
        cache = await api.create_object("redis_acls", {"name": "cache-writer", "acl": "+@all ~cache:*"})
        await api.update_bdb(bdb["uid"], {"roles_permissions": [
            {"role_uid": reader["uid"], "redis_acl_uid": cache["uid"]},
            {"role_uid": writer["uid"], "redis_acl_uid": acls["Full Access"]}]})
    await eventually("alice may write cache:1", lambda: run(lambda: alice.set("cache:1", "1") is True))
    assert await denied(lambda: alice.set("other", "1"), redis.exceptions.NoPermissionError)

    # a deleted user's open connection and new connections fail
    master = await run(lambda: sentinel.discover_master("acl-db"))
    held = redis.Connection(host=master[0], port=master[1], username="bob", password=PASSWORDS["bob"],
                            socket_timeout=2.0)
    await run(held.connect)
    assert not await run(lambda: closed_by_server(held))
    async with cluster3.api(0) as api:
        await api.delete_object("users", users["bob"]["uid"])

    async def bob_gone() -> bool:
        return await run(lambda: closed_by_server(held))

    await eventually("bob's open connection is closed", bob_gone)
    fresh = client_of(sentinel, "bob")
    assert await denied(lambda: fresh.get("k"), redis.exceptions.AuthenticationError)

    # after a failover the new master (the former replica) has the same users and rules
    before = (await run(lambda: sentinel.discover_master("acl-db")))[0]
    async with cluster3.api(0) as api:
        await api.fail_over_bdb(bdb["uid"])

    async def moved() -> bool:
        return (await run(lambda: sentinel.discover_master("acl-db")))[0] != before

    await eventually("the master moved", moved, 60)
    await eventually("alice writes cache:2 on the new master",
                     lambda: run(lambda: alice.set("cache:2", "2") is True), 30)
    assert await denied(lambda: alice.set("other", "1"), redis.exceptions.NoPermissionError)
    assert await denied(lambda: alice.get("k"), redis.exceptions.NoPermissionError)  # keys cache:* only
    assert await denied(lambda: carol.get("cache:1"), redis.exceptions.AuthenticationError)
    async with cluster3.api(0) as api:
        await api.delete_bdb(bdb["uid"])


async def test_a_database_without_its_default_user_lets_in_only_its_users_and_still_fails_over(
        cluster3: LoopbackCluster) -> None:
    async with cluster3.api(0) as api:
        role = await api.create_object("roles", {"name": "private-app", "management": "none"})
        await api.create_object("users", {"name": "erin", "password": "erin-password-5",
                                          "role_uids": [role["uid"]]})
        bdb = await api.create_bdb({
            "name": "private-db", "memory_size": 32 * 1024 * 1024, "replication": True, "default_user": False,
            "roles_permissions": [{"role_uid": role["uid"], "redis_acl_uid": 1}]})
        # active means the cluster's own connections (probes, replication, Sentinel) work without it
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        with pytest.raises(ClusterApiError) as refused:
            await api.update_bdb(bdb["uid"], {"authentication_redis_pass": "let-me-in"})
        assert refused.value.status == 406 and "authentication_redis_pass" in str(refused.value.body)
    assert bdb["default_user"] is False and "authentication_redis_pass" not in bdb

    sentinel = Sentinel(cluster3.sentinels(), socket_timeout=1.0)
    host, port = await run(lambda: sentinel.discover_master("private-db"))
    anonymous = redis.Redis(host, port, socket_timeout=2.0)
    assert await denied(lambda: anonymous.set("k", "v"), redis.exceptions.AuthenticationError)
    assert await denied(lambda: anonymous.execute_command("AUTH", "default", "anything"),
                        redis.exceptions.AuthenticationError)
    erin = sentinel.master_for("private-db", username="erin", password="erin-password-5", socket_timeout=2.0)
    await eventually("erin writes", lambda: run(lambda: erin.set("k", "v") is True))
    assert await run(lambda: erin.execute_command("WAIT", 1, 5000)) == 1  # the replica replicates
    await internal_logins_hold(sentinel, "private-db", erin, None, default_user_on=False)

    async with cluster3.api(0) as api:
        await api.fail_over_bdb(bdb["uid"])

    async def moved() -> bool:
        return (await run(lambda: sentinel.discover_master("private-db")))[0] != host

    await eventually("the master moved", moved, 60)
    await eventually("erin writes on the new master", lambda: run(lambda: erin.set("k2", "v") is True), 30)
    assert await run(lambda: erin.get("k")) == b"v"
    new_host, new_port = await run(lambda: sentinel.discover_master("private-db"))
    anonymous = redis.Redis(new_host, new_port, socket_timeout=2.0)
    assert await denied(lambda: anonymous.get("k"), redis.exceptions.AuthenticationError)
    async with cluster3.api(0) as api:
        await api.delete_bdb(bdb["uid"])
