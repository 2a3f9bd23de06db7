"""A replicated database survives the SIGKILL of its master's node: Sentinel promotes the replica,
clients find it through port 8001, writes confirmed by WAIT are kept, the REST API shows the roles."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.sentinel import Sentinel
from tests.integration.node.support import write_confirmed

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


def node_index(cluster: LoopbackCluster, host: str) -> int:
    return next(n.index for n in cluster.nodes if n.addr == host)


async def write_until_failover(client: redis.Redis, key: str, timeout_s: float) -> None:
    """Retry one write until a master takes it (Sentinel discovery finds the new one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await asyncio.to_thread(client.set, key, "1")
            return
        except redis.RedisError as exc:
            assert time.monotonic() < deadline, f"no write taken {timeout_s:.0f} s after the kill: {exc!r}"
            await asyncio.sleep(0.2)


async def test_master_node_killed_writes_resume_and_confirmed_writes_survive(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(1) as api:
        bdb = await api.create_bdb({"name": "orders", "memory_size": 64 * 1024 * 1024, "replication": True,
                                    "authentication_redis_pass": "s3cret-pass"})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
    master_host, _ = await asyncio.to_thread(sentinel.discover_master, "orders")
    client = sentinel.master_for("orders", password="s3cret-pass", socket_timeout=1.0)

    # wait until the replica is attached, then write; keep only writes WAIT confirmed on a replica
    confirmed = await write_confirmed(client, 200)

    # every sentinel knows the replica (it learns it from the master's INFO), or none could promote it
    deadline = time.monotonic() + 30
    for host, port in cluster.sentinels():
        probe = redis.Redis(host=host, port=port, socket_timeout=1)
        while not [r for r in await asyncio.to_thread(probe.sentinel_slaves, "orders")
                   if "s_down" not in r["flags"]]:
            assert time.monotonic() < deadline, f"sentinel {host} does not know the replica"
            await asyncio.sleep(0.2)
        probe.close()

    victim = node_index(cluster, master_host)
    cluster.kill_node(victim)

    # writes through Sentinel discovery succeed again
    await write_until_failover(client, "after-failover", 90)
    new_host, _ = await asyncio.to_thread(sentinel.discover_master, "orders")
    assert new_host != master_host

    values = await asyncio.to_thread(client.mget, confirmed)
    assert values == [k.encode() for k in confirmed], "a write confirmed by WAIT was lost"

    # the REST API (asked on a surviving node) shows the new master
    survivor = next(i for i in range(3) if i != victim)
    killed_uid = str(victim + 1)
    async with cluster.api(survivor) as api:
        deadline = time.monotonic() + 30
        while True:
            shards = await api.shards(bdb["uid"])
            masters = [s for s in shards if s["role"] == "master"]
            if len(masters) == 1 and masters[0]["node_uid"] != killed_uid:
                break
            assert time.monotonic() < deadline, f"REST API still shows old roles: {shards}"
            await asyncio.sleep(0.2)
        assert masters[0]["node_name"] == new_host


async def test_master_node_killed_as_soon_as_active_fails_over(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """`active` means failover-ready: the sentinels know each other and the replica for the database
    by then, so a master lost right after creation fails over like any other (before, the sentinels
    had not yet met through the new master's hello channel, and no quorum could ever form)."""
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(1) as api:
        bdb = await api.create_bdb({"name": "early", "memory_size": 64 * 1024 * 1024, "replication": True,
                                    "authentication_redis_pass": "early-pass"})
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
    master_host, _ = await asyncio.to_thread(sentinel.discover_master, "early")
    client = sentinel.master_for("early", password="early-pass", socket_timeout=1.0)
    await asyncio.to_thread(client.set, "before", "1")
    assert await asyncio.to_thread(client.wait, 1, 2000) == 1
    cluster.kill_node(node_index(cluster, master_host))
    await write_until_failover(client, "after", 60)
    new_host, _ = await asyncio.to_thread(sentinel.discover_master, "early")
    assert new_host != master_host
    assert await asyncio.to_thread(client.get, "before") == b"1"


async def test_down_nodes_replicas_move_after_the_policy_grace_and_only_with_slave_ha(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """PUT /v1/cluster/policy decides whether (slave_ha) and when (slave_ha_grace_period) the replicas
    of a node that stays down are re-created elsewhere; until then WAIT 1 confirms nothing."""
    cluster: LoopbackCluster = await make_cluster(3, replica_move_grace_s=600.0)
    async with cluster.api(0) as api:
        assert await api.policy() == {"slave_ha": True, "slave_ha_grace_period": 600}
        assert await api.put_policy({"slave_ha": False, "slave_ha_grace_period": 1}) == {
            "slave_ha": False, "slave_ha_grace_period": 1}
        bdb = await api.create_bdb({"name": "spare", "memory_size": 32 * 1024 * 1024, "replication": True})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    for index in range(3):  # the policy is the cluster's: every node reports it
        async with cluster.api(index) as api:
            assert await api.policy() == {"slave_ha": False, "slave_ha_grace_period": 1}
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
    client = sentinel.master_for("spare", socket_timeout=1.0)
    await write_confirmed(client, 10)
    async with cluster.api(0) as api:
        shards = await api.shards(bdb["uid"])
    replica_node = next(s["node_uid"] for s in shards if s["role"] == "slave")
    victim = int(replica_node) - 1
    survivor = next(i for i in range(3) if i != victim)
    cluster.kill_node(victim)

    await asyncio.sleep(5)  # slave_ha off: the replica stays with its node, however long it is down
    async with cluster.api(survivor) as api:
        assert {s["node_uid"] for s in await api.shards(bdb["uid"]) if s["role"] == "slave"} == {replica_node}
        await api.put_policy({"slave_ha": True})
        deadline = time.monotonic() + 60
        while True:  # now the replica is re-created on the third node and catches up
            shards = await api.shards(bdb["uid"])
            replicas = [s for s in shards if s["role"] == "slave"]
            if replicas and replicas[0]["node_uid"] != replica_node and replicas[0]["status"] == "active":
                break
            assert time.monotonic() < deadline, f"the replica did not move off the down node: {shards}"
            await asyncio.sleep(0.3)
    assert await asyncio.to_thread(client.set, "after", "1")
    assert await asyncio.to_thread(client.execute_command, "WAIT", 1, 5000) == 1


async def test_a_leader_cut_off_from_the_others_fails_nothing_over(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """The CCS leader whose peers stop answering (paused: their connections stay open, as behind a
    partition) sees their nodes down past the grace and a database's replica on its own node still
    "in sync" (the link stays up until its timeout), so its plan says: fail that master over. It must
    not: a majority does not confirm it, and its sentinel's promotion of the stale replica would win
    over the master the majority chose once the partition heals (the isolate data loss of
    `bench/chaos.py`)."""
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(0) as api:
        await api.put_policy({"slave_ha_grace_period": 1})
        leader = str((await api.cluster())["master_node"])
        # three databases spread masters and replicas so that one has its replica on the leader
        bdbs = [await api.create_bdb({"name": f"cut{i}", "memory_size": 16 << 20, "replication": True})
                for i in range(3)]
        bdbs = [await api.wait_bdb_status(b["uid"], timeout_s=120) for b in bdbs]
        chosen = own = None
        for bdb in bdbs:
            shards = await api.shards(bdb["uid"])
            roles = {s["role"]: s["node_uid"] for s in shards}
            if roles.get("slave") == leader and roles.get("master") != leader:
                chosen = bdb
                break
            if roles.get("master") == leader:
                own = bdb
        assert chosen is not None and own is not None, "no replica (or no master) on the leader's node"
    leader_index = int(leader) - 1
    # a master on the leader's node keeps refusing writes no replica confirms: the leader's node
    # never acts on a state a majority did not acknowledge (lowering min-replicas-to-write)
    mine = redis.Redis(host=cluster.nodes[leader_index].addr, port=own["port"], socket_timeout=1.0)
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
    master_host, _ = await asyncio.to_thread(sentinel.discover_master, chosen["name"])
    await write_confirmed(sentinel.master_for(chosen["name"], socket_timeout=1.0), 10)
    local = redis.Redis(host=cluster.nodes[leader_index].addr, port=chosen["port"], socket_timeout=1.0)
    others = [i for i in range(3) if i != leader_index]
    log = cluster.nodes[leader_index].log_file
    for index in others:
        cluster.pause_node(index)
    try:
        deadline = time.monotonic() + 40
        while "not requesting the planned failover of" not in log.read_text():
            assert time.monotonic() < deadline, "the cut-off leader never planned the failover"
            assert (await asyncio.to_thread(local.info, "replication"))["role"] == "slave"
            assert (await asyncio.to_thread(mine.config_get, "min-replicas-to-write")) == {
                "min-replicas-to-write": "1"}
            await asyncio.sleep(0.5)
        for _ in range(10):  # and a while after: still nothing promoted, nothing lowered
            assert (await asyncio.to_thread(local.info, "replication"))["role"] == "slave"
            assert (await asyncio.to_thread(mine.config_get, "min-replicas-to-write")) == {
                "min-replicas-to-write": "1"}
            await asyncio.sleep(0.5)
        # fenced: once its replica has not acknowledged for min-replicas-max-lag (10 s), that master
        # refuses writes
        deadline = time.monotonic() + 15
        while True:
            try:
                await asyncio.to_thread(mine.set, "cut-off", "1")
            except redis.ResponseError as exc:
                assert "NOREPLICAS" in str(exc)
                break
            assert time.monotonic() < deadline, "the master on the cut-off node still takes writes"
            await asyncio.sleep(0.5)
    finally:
        for index in others:
            cluster.pause_node(index, resume=True)
    assert "planned failover of " + chosen["name"] + " requested" not in log.read_text()
    assert (await asyncio.to_thread(sentinel.discover_master, chosen["name"]))[0] == master_host
    local.close()
    mine.close()


async def test_a_planned_restart_keeps_the_nodes_replicas_and_a_crash_moves_them(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """A node stopped with SIGTERM (a rolling change, a deleted pod) announces a planned restart, and
    its replicas wait for it (at least the restart grace, 60 s by default) however short the grace
    for a node lost without notice; once it is back, a SIGKILL of the same node is a loss without
    notice, and its replica is re-created on the third node after that short grace."""
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(0) as api:
        await api.put_policy({"slave_ha_grace_period": 1})
        bdb = await api.create_bdb({"name": "planned", "memory_size": 16 << 20, "replication": True})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        shards = await api.shards(bdb["uid"])
    replica_node = next(s["node_uid"] for s in shards if s["role"] == "slave")
    victim = int(replica_node) - 1
    survivor = next(i for i in range(3) if i != victim)

    async def replica_nodes() -> set[str]:
        async with cluster.api(survivor) as api:
            return {str(s["node_uid"]) for s in await api.shards(bdb["uid"]) if s["role"] == "slave"}

    await asyncio.to_thread(cluster.terminate_node, victim)
    await asyncio.sleep(8)  # far past the 1 s grace: the announced restart holds the replica
    assert await replica_nodes() == {str(replica_node)}

    cluster.start_node(victim)
    await cluster.wait_ready([victim])
    await asyncio.sleep(2)  # the leader sees it back (and forgets its announcement) on its next look
    cluster.kill_node(victim)
    deadline = time.monotonic() + 30
    while await replica_nodes() in ({str(replica_node)}, set()):
        assert time.monotonic() < deadline, "the crashed node's replica was not re-created elsewhere"
        await asyncio.sleep(0.3)
