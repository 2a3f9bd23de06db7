"""Database life cycle on real shards: create (settings reach redis-server), update, delete."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from redis.sentinel import Sentinel

from recluster.node.devcluster import LoopbackCluster
from recluster.node.metric_families import exposed_names

pytestmark = pytest.mark.integration


async def test_create_update_delete_a_database_with_its_settings(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(2) as api:
        bdb = await api.create_bdb({
            "name": "settings-db", "memory_size": 32 * 1024 * 1024, "data_persistence": "aof",
            "aof_policy": "appendfsync-always", "eviction_policy": "allkeys-lru",
            "authentication_redis_pass": "pw-settings", "replication": True})
        assert bdb["status"] == "pending" and bdb["action_uid"]
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        assert 10000 <= bdb["port"] <= 19999
        shards = await api.shards(bdb["uid"])
        assert sorted(s["role"] for s in shards) == ["master", "slave"]
        assert len({s["node_uid"] for s in shards}) == 2, "master and replica share a node"
        host = bdb["endpoints"][0]["dns_name"]
        client = aioredis.Redis(host=host, port=bdb["port"], password="pw-settings")
        try:
            config = await client.config_get("*")
            assert config["maxmemory"] == str(32 * 1024 * 1024)
            assert config["maxmemory-policy"] == "allkeys-lru"
            assert config["appendonly"] == "yes" and config["appendfsync"] == "always"
            assert config["bind"] == host
            await client.set("k", "v")
        finally:
            await client.aclose()
        sentinel = Sentinel(cluster3.sentinels(), socket_timeout=1)
        assert (await asyncio.to_thread(sentinel.discover_master, "settings-db")) == (host, bdb["port"])

        # the master waits for its replica (min-replicas-to-write 1) once the replica is in sync
        deadline = time.monotonic() + 60
        while True:
            shards = await api.shards(bdb["uid"])
            master = next(s for s in shards if s["role"] == "master")
            if master["min_replicas_to_write"] == 1:
                break
            assert time.monotonic() < deadline, shards
            await asyncio.sleep(0.3)

        updated = await api.update_bdb(bdb["uid"], {"memory_size": 48 * 1024 * 1024,
                                                    "eviction_policy": "noeviction"})
        assert updated["status"] == "active-change-pending"
        await api.wait_bdb_status(bdb["uid"], timeout_s=60)
        client = aioredis.Redis(host=host, port=bdb["port"], password="pw-settings")
        try:
            assert (await client.config_get("maxmemory"))["maxmemory"] == str(48 * 1024 * 1024)
            assert (await client.get("k")) == b"v"
        finally:
            await client.aclose()

        stats = await api.bdb_stats(bdb["uid"])
        assert stats[str(bdb["uid"])]["no_of_keys"] >= 1

        await api.delete_bdb(bdb["uid"])
        await api.wait_bdb_status(bdb["uid"], "deleted", timeout_s=120)
        with pytest.raises(OSError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, bdb["port"]), 2)
            writer.close()
        assert all(s["bdb_uid"] != bdb["uid"] for s in await api.shards())


async def test_license_is_stored_and_reported(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(1) as api:
        await api.put_license("----- LICENSE TEXT -----")
        for i in range(3):
            async with cluster3.api(i) as other:
                assert (await other.license())["license"] == "----- LICENSE TEXT -----"


async def test_metrics_report_databases_from_info(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(0) as api:
        bdb = await api.create_bdb({"name": "metrics-db", "memory_size": 16 * 1024 * 1024})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        host = bdb["endpoints"][0]["dns_name"]
        try:
            node = next(n for n in cluster3.nodes if n.addr == host)
            # HTTPS with the node's own certificate (self-signed here: it is its own trust anchor)
            own_cert = ssl.create_default_context(cafile=str(node.data_dir / "tls" / "cert.pem"))
            async with httpx.AsyncClient(verify=own_cert) as client:
                text = (await client.get(f"https://{host}:{cluster3.metrics_port}/metrics")).text
            uid, name = bdb["uid"], cluster3.cluster_name
            assert f'bdb_up{{bdb="{uid}",cluster="{name}"}} 1.0' in text
            assert f'bdb_memory_limit{{bdb="{uid}",cluster="{name}"}}' in text
            assert (f'recluster_cluster_bdb_info{{bdb="{uid}",cluster="{name}",name="metrics-db",'
                    'replication="false"} 1.0') in text
            assert f'recluster_cluster_nodes{{cluster="{name}"}} 3.0' in text
            # the master's node exposes every family of docs/monitoring.md but the TLS shards' one and
            # those of scheduled backups (only for a database that has them: unit
            # test_metric_families, tests/integration/node/test_bdb_scheduled_backups.py)
            samples = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
            backups = {n for n in exposed_names() if n.startswith("recluster_cluster_bdb_backup_")}
            assert exposed_names() - {"recluster_shard_cert_expiration_seconds", *backups} <= samples
            assert not backups & samples
        finally:
            await api.delete_bdb(bdb["uid"])
            await api.wait_bdb_status(bdb["uid"], "deleted", timeout_s=120)


async def test_turning_replication_on_and_off_adds_and_removes_the_replica(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(1) as api:
        bdb = await api.create_bdb({"name": "toggle-repl", "memory_size": 16 * 1024 * 1024})
        bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        assert len(await api.shards(bdb["uid"])) == 1
        await api.update_bdb(bdb["uid"], {"replication": True})
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        deadline = time.monotonic() + 60
        while True:
            shards = await api.shards(bdb["uid"])
            if sorted(s["role"] for s in shards) == ["master", "slave"] and all(
                    s["status"] == "active" for s in shards):
                break
            assert time.monotonic() < deadline, shards
            await asyncio.sleep(0.3)
        assert len({s["node_uid"] for s in shards}) == 2
        await api.update_bdb(bdb["uid"], {"replication": False})
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        deadline = time.monotonic() + 60
        while len(await api.shards(bdb["uid"])) != 1:
            assert time.monotonic() < deadline, await api.shards(bdb["uid"])
            await asyncio.sleep(0.3)
        await api.delete_bdb(bdb["uid"])
        await api.wait_bdb_status(bdb["uid"], "deleted", timeout_s=120)
