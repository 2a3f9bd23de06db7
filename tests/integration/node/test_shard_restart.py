"""The master shard of a replicated database without persistence is killed (its redis-server alone,
its node stays): the node must not restart it as an empty master, which would make the replica
resynchronise from it and drop every write WAIT confirmed (found by bench/chaos.py). The replica is
promoted, the killed shard comes back as its replica, and every confirmed write is still there."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.sentinel import Sentinel
from tests.integration.node.support import write_confirmed

from recluster.node.devcluster import LoopbackCluster
from recluster.node.processes import kill_recorded

pytestmark = pytest.mark.integration

PASSWORD = "restart-pass-1"


async def test_killed_master_shard_comes_back_as_replica_and_confirmed_writes_survive(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": "volatile", "memory_size": 64 * 1024 * 1024, "replication": True,
                                    "authentication_redis_pass": PASSWORD})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
    client = sentinel.master_for("volatile", password=PASSWORD, socket_timeout=1.0, retry=None)

    confirmed = await write_confirmed(client, 300)

    master_host, port = await asyncio.to_thread(sentinel.discover_master, "volatile")
    node = next(n for n in cluster.nodes if n.addr == master_host)
    shard_dir = node.data_dir / "shards" / str(bdb["uid"])
    assert kill_recorded(shard_dir / "redis.pid", str(shard_dir / "redis.conf"))

    # the other shard becomes master with every confirmed write
    deadline = time.monotonic() + 90
    while True:
        try:
            new_host, _ = await asyncio.to_thread(sentinel.discover_master, "volatile")
            if new_host != master_host:
                values = await asyncio.to_thread(client.mget, confirmed)
                break
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "no new master within 90 s of the kill"
        await asyncio.sleep(0.5)
    assert [k for k, v in zip(confirmed, values, strict=True) if v is None] == []

    # the killed shard is back, as a replica of the new master, and holds the data again
    restarted = redis.Redis(host=master_host, port=port, password=PASSWORD, socket_timeout=1.0)
    deadline = time.monotonic() + 90
    while True:
        try:
            info = await asyncio.to_thread(restarted.info, "replication")
            if info.get("role") == "slave" and info.get("master_link_status") == "up":
                break
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "the killed shard did not come back as a replica"
        await asyncio.sleep(0.5)
    assert await asyncio.to_thread(restarted.dbsize) >= len(confirmed)
    restarted.close()
    client.close()
