"""A master shard of a replicated database without persistence stops before Sentinel moved its role:
the node must not restart it as an empty master, which would make the replica resynchronise from it
and drop every write WAIT confirmed. Two ways it happens: its redis-server alone is killed (found by
bench/chaos.py), and its node comes back on an empty volume, as a pod without a persistent volume
does (found by bench/scale.py). Either way the replica is promoted, the stopped shard comes back as
its replica, and every confirmed write is still there."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time

import pytest
import redis
from redis.sentinel import Sentinel
from tests.integration.node.support import write_confirmed

from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster, LoopbackNode
from recluster.node.processes import kill_recorded
from recluster.node.sentinel import CCS_NAME

pytestmark = pytest.mark.integration

PASSWORD = "restart-pass-1"
DB = "volatile"


async def _database_with_confirmed_writes(
    cluster: LoopbackCluster,
) -> tuple[Sentinel, redis.Redis, list[str], LoopbackNode, int, int]:
    """A replicated database without persistence holding 300 confirmed writes; the node of its master."""
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": DB, "memory_size": 64 * 1024 * 1024, "replication": True,
                                    "authentication_redis_pass": PASSWORD})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
    client = sentinel.master_for(DB, password=PASSWORD, socket_timeout=1.0, retry=None)
    confirmed = await write_confirmed(client, 300)
    master_host, port = await asyncio.to_thread(sentinel.discover_master, DB)
    node = next(n for n in cluster.nodes if n.addr == master_host)
    return sentinel, client, confirmed, node, int(bdb["uid"]), port


async def _confirmed_writes_kept_and_old_master_replicates(
    sentinel: Sentinel, client: redis.Redis, confirmed: list[str], old_master: str, port: int
) -> None:
    # the other shard becomes master with every confirmed write
    deadline = time.monotonic() + 90
    while True:
        try:
            new_host, _ = await asyncio.to_thread(sentinel.discover_master, DB)
            with redis.Redis(host=new_host, port=port, password=PASSWORD, socket_timeout=1.0) as master:
                # only a shard that is master counts (a restarted one serves nothing while it syncs)
                if (await asyncio.to_thread(master.execute_command, "ROLE"))[0] == b"master":
                    values = await asyncio.to_thread(master.mget, confirmed)
                    lost = [k for k, v in zip(confirmed, values, strict=True) if v is None]
                    assert not lost, f"{len(lost)} of {len(confirmed)} writes lost (master {new_host})"
                    if new_host != old_master:
                        break
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "no new master within 90 s"
        await asyncio.sleep(0.5)

    # the stopped shard is back, as a replica of the new master, and holds the data again
    restarted = redis.Redis(host=old_master, port=port, password=PASSWORD, socket_timeout=1.0)
    deadline = time.monotonic() + 90
    while True:
        try:
            info = await asyncio.to_thread(restarted.info, "replication")
            if info.get("role") == "slave" and info.get("master_link_status") == "up":
                break
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "the stopped shard did not come back as a replica"
        await asyncio.sleep(0.5)
    assert await asyncio.to_thread(restarted.dbsize) >= len(confirmed)
    values = await asyncio.to_thread(client.mget, confirmed)
    assert [k for k, v in zip(confirmed, values, strict=True) if v is None] == []
    restarted.close()
    client.close()


async def test_killed_master_shard_comes_back_as_replica_and_confirmed_writes_survive(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(3)
    sentinel, client, confirmed, node, bdb_uid, port = await _database_with_confirmed_writes(cluster)
    shard_dir = node.data_dir / "shards" / str(bdb_uid)
    assert kill_recorded(shard_dir / "redis.pid", str(shard_dir / "redis.conf"))
    await _confirmed_writes_kept_and_old_master_replicates(sentinel, client, confirmed, node.addr, port)


async def _move_master_off(cluster: LoopbackCluster, sentinel: Sentinel, uid: int, host: str) -> str:
    """Fail the database over (the REST API's planned failover) until its master is not on `host`;
    the new host."""
    deadline = time.monotonic() + 60
    async with cluster.api(0) as api:
        while True:
            current, _ = await asyncio.to_thread(sentinel.discover_master, DB)
            if current != host:
                return str(current)
            with contextlib.suppress(ClusterApiError):  # no replica known to the sentinels yet: again
                await api.fail_over_bdb(uid)
            assert time.monotonic() < deadline, f"the master of {DB} did not leave {host} within 60 s"
            await asyncio.sleep(1)


async def test_master_node_back_on_an_empty_volume_does_not_wipe_the_replica(make_cluster) -> None:  # type: ignore[no-untyped-def]
    # Sentinel is slow to act here (20 s) so that the node is back before its master is failed over,
    # the race a pod restart wins against Sentinel; the master is kept off the CCS leader so that the
    # node rejoins at once.
    cluster: LoopbackCluster = await make_cluster(3, down_after_ms=20000)
    sentinel, client, confirmed, node, uid, port = await _database_with_confirmed_writes(cluster)
    leader, _ = await asyncio.to_thread(sentinel.discover_master, CCS_NAME)
    if node.addr == leader:
        moved_to = await _move_master_off(cluster, sentinel, uid, leader)
        node = next(n for n in cluster.nodes if n.addr == moved_to)
        await write_confirmed(client, 10)  # the old master has synced from the new one
    cluster.kill_node(node.index)
    shutil.rmtree(node.data_dir)
    cluster.start_node(node.index)  # same address and name, nothing on its volume: it rejoins
    await cluster.wait_api(node.index)
    others = [n.addr for n in cluster.nodes if n is not node]
    deadline = time.monotonic() + 120
    async with cluster.api(node.index) as api:
        while True:  # as the operator does: when it held the CCS master, the join waits for a new one
            await api.join_cluster(others, cluster.username, cluster.password)
            try:
                await api.wait_bootstrap(120)
                break
            except RuntimeError:
                assert time.monotonic() < deadline, "the node did not rejoin within 120 s"
                await asyncio.sleep(2)
    await _confirmed_writes_kept_and_old_master_replicates(sentinel, client, confirmed, node.addr, port)
