"""The node's engines through the REST API of a loopback cluster (this machine has one, its
redis-server): GET /v1/cluster says the default and GET /v1/nodes what each node supports, a bdb
created without redis_version gets the default and reports the version its shards run (INFO agrees),
and a change of version on the live database is refused naming the field."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def test_engines_default_and_a_databases_running_version(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(0) as api:
        cluster = await api.cluster()
        default = cluster["default_provisioned_redis_version"]
        supported = cluster["supported_database_versions"]
        assert default and {"db_type": "redis", "version": default} in supported
        for node in await api.nodes():
            assert node["supported_database_versions"] == supported
        bdb = await api.create_bdb({"name": "engine-check", "memory_size": 16 * 1024 * 1024})
        try:
            assert bdb["redis_version"] == default
            active = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
            assert active["version"] == default
            endpoint = active["endpoints"][0]
            client = aioredis.Redis(host=endpoint["addr"][0], port=endpoint["port"], decode_responses=True)
            try:
                running = (await client.info("server"))["redis_version"]
            finally:
                await client.aclose()
            assert str(running).startswith(default + "."), running
            async with httpx.AsyncClient(verify=False, auth=(cluster3.username, cluster3.password)) as c:  # noqa: S501
                url = f"{cluster3.url(1)}/v1/bdbs/{bdb['uid']}"
                refused = await c.put(url, json={"redis_version": "99.0"})
                assert refused.status_code == 400 and refused.json()["field"] == "redis_version"
                assert default in refused.json()["message"]  # the versions there are
                same = await c.put(url, json={"redis_version": default})
                assert same.status_code == 200, same.text
        finally:
            await api.wait_bdb_status(bdb["uid"], timeout_s=120)
            await api.delete_bdb(bdb["uid"])
            await api.wait_bdb_status(bdb["uid"], "deleted", timeout_s=120)
