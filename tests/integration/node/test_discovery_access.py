"""The discovery port answers anyone what a Sentinel client needs and refuses every change without
the sentinels' admin credentials; a planned failover goes through the REST API instead."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.sentinel import Sentinel

from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

CHANGES = [
    ("SENTINEL", "REMOVE", "orders"), ("SENTINEL", "FAILOVER", "orders"),
    ("SENTINEL", "SET", "orders", "quorum", "1"),
    ("SENTINEL", "MONITOR", "evil", "127.0.0.1", "6379", "1"), ("SENTINEL", "RESET", "*"),
    ("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "no"), ("SENTINEL", "DEBUG", "info-period", "10"),
    ("CLIENT", "KILL", "ID", "1"), ("SHUTDOWN",), ("ACL", "SETUSER", "default", "+@all"),
]


async def test_anonymous_clients_discover_but_change_nothing_and_rest_fails_over(  # type: ignore[no-untyped-def]
        make_cluster) -> None:
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": "orders", "memory_size": 32 * 1024 * 1024, "replication": True})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)

    discovery = Sentinel(cluster.sentinels(), socket_timeout=2.0)
    before, port = await asyncio.to_thread(discovery.discover_master, "orders")
    assert port == bdb["port"]
    assert await asyncio.to_thread(discovery.discover_slaves, "orders")
    for host, sentinel_port in cluster.sentinels():
        anonymous = redis.Redis(host=host, port=sentinel_port, socket_timeout=2, decode_responses=True)
        assert anonymous.ping()
        assert "orders" in anonymous.sentinel_masters()
        for change in CHANGES:
            with pytest.raises(redis.ResponseError, match="no permissions"):
                anonymous.execute_command(*change)
        anonymous.close()
    assert await asyncio.to_thread(discovery.discover_master, "orders") == (before, port)  # nothing moved

    # a replica shard is no target; the master shard is, through any node (forwarded to the leader)
    async with cluster.api(2) as api:
        shards = await api.shards(bdb["uid"])
        replica = next(s for s in shards if s["role"] != "master")
        with pytest.raises(ClusterApiError) as refused:
            await api.fail_over_shard(replica["uid"])
        assert refused.value.status == 406 and "is a replica" in str(refused.value.body)
        deadline = time.monotonic() + 60
        while True:  # the sentinels learn the replica from the master's INFO: refused (409) until then
            try:
                await api.fail_over_bdb(bdb["uid"])
                break
            except ClusterApiError as exc:
                assert exc.status == 409 and time.monotonic() < deadline, exc
                await asyncio.sleep(0.5)
    while (await asyncio.to_thread(discovery.discover_master, "orders"))[0] == before:
        assert time.monotonic() < deadline, "the planned failover did not move the master"
        await asyncio.sleep(0.2)
