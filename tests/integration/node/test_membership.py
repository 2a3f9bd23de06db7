"""Five nodes form one cluster; a node stopped with SIGTERM hands its master shards over first."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis
from redis.sentinel import Sentinel

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def test_five_nodes_bootstrap_and_a_killed_one_rejoins(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(5)
    async with cluster.api(4) as api:
        assert (await api.cluster())["quorum"] == 3
        assert [n["uid"] for n in await api.nodes()] == [1, 2, 3, 4, 5]
    cluster.kill_node(3)
    cluster.start_node(3)
    await cluster.wait_ready([3], timeout_s=120)
    async with cluster.api(3) as api:
        deadline = time.monotonic() + 60
        while any(n["status"] != "active" for n in await api.nodes()):
            assert time.monotonic() < deadline, await api.nodes()
            await asyncio.sleep(0.5)
        assert len(await api.nodes()) == 5


async def test_sigterm_hands_master_shards_to_replicas_before_stopping(make_cluster) -> None:  # type: ignore[no-untyped-def]
    # a long down-after: Sentinel alone would not fail over before the daemon exits
    cluster: LoopbackCluster = await make_cluster(3, down_after_ms=20000, handoff_timeout=40.0)
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": "graceful", "memory_size": 32 * 1024 * 1024, "replication": True})
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=1)
    client = sentinel.master_for("graceful", socket_timeout=1)
    deadline = time.monotonic() + 60
    written = 0
    while written < 50:
        assert time.monotonic() < deadline
        try:
            await asyncio.to_thread(client.set, f"g{written}", written)
            if await asyncio.to_thread(client.execute_command, "WAIT", 1, 1000) >= 1:
                written += 1
        except redis.RedisError:
            await asyncio.sleep(0.2)
    for host, port in cluster.sentinels():  # every sentinel knows the replica
        probe = redis.Redis(host=host, port=port, socket_timeout=1)
        while not await asyncio.to_thread(probe.sentinel_slaves, "graceful"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        probe.close()
    old_host, _ = await asyncio.to_thread(sentinel.discover_master, "graceful")
    victim = next(n.index for n in cluster.nodes if n.addr == old_host)
    started = time.monotonic()
    await asyncio.to_thread(cluster.terminate_node, victim, 60.0)
    process = cluster.nodes[victim].process
    # uvicorn exits by re-raising the signal it handled: a clean stop shows as -SIGTERM
    assert process is not None and process.returncode in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 20, "shutdown waited for down-after instead of handing over"
    new_host, _ = await asyncio.to_thread(sentinel.discover_master, "graceful")
    assert new_host != old_host
    deadline = time.monotonic() + 30
    while True:
        try:
            values = await asyncio.to_thread(client.mget, [f"g{i}" for i in range(written)])
            await asyncio.to_thread(client.set, "after", 1)
            break
        except redis.RedisError as exc:
            assert time.monotonic() < deadline, exc
            await asyncio.sleep(0.3)
    assert values == [str(i).encode() for i in range(written)]
