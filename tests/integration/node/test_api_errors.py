"""Bad input gets a 4xx that names the field and changes nothing; wrong credentials get 401."""

from __future__ import annotations

import httpx
import pytest

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"memory_size": 1048576}, 400, "name"),
    ({"name": "bad name!", "memory_size": 1048576}, 400, "name"),
    ({"name": "x1"}, 400, "memory_size"),
    ({"name": "x1", "memory_size": "lots"}, 400, "memory_size"),
    ({"name": "x1", "memory_size": 1048576, "port": 9999}, 400, "port"),
    ({"name": "x1", "memory_size": 1048576, "port": "10001"}, 400, "port"),
    ({"name": "x1", "memory_size": 1048576, "eviction_policy": "sometimes-lru"}, 400, "eviction_policy"),
    ({"name": "x1", "memory_size": 1048576, "replication": 1}, 400, "replication"),
    ({"name": "x1", "memory_size": 1048576, "shards_count": 2}, 406, "shards_count"),
    ({"name": "x1", "memory_size": 1048576, "flavour": "vanilla"}, 400, "flavour"),
    ({"name": "x1", "memory_size": 1048576, "redis_version": "6.2"}, 400, "redis_version"),
    ({"name": "x1", "memory_size": 1048576, "redis_version": "latest"}, 400, "redis_version"),
    ({"name": "x1", "memory_size": 1048576, "data_persistence": "aof", "aof_policy": "never"}, 400,
     "aof_policy"),
])
async def test_bad_bodies_get_4xx_naming_the_field(cluster3: LoopbackCluster, body: dict,  # type: ignore[type-arg]
                                                   status: int, field: str) -> None:
    # asked on a non-leader node too: the leader answers through forwarding, the same way
    for index in (0, 2):
        async with httpx.AsyncClient(verify=False, auth=(cluster3.username, cluster3.password)) as client:  # noqa: S501
            before = (await client.get(f"{cluster3.url(index)}/v1/bdbs")).json()
            response = await client.post(f"{cluster3.url(index)}/v1/bdbs", json=body)
            assert response.status_code == status, response.text
            error = response.json()
            assert error["error_code"] and field in error["message"] and error.get("field") == field
            assert (await client.get(f"{cluster3.url(index)}/v1/bdbs")).json() == before


@pytest.mark.parametrize(("body", "field"), [
    ({"slave_ha_grace_period": -1}, "slave_ha_grace_period"),
    ({"slave_ha_grace_period": "15"}, "slave_ha_grace_period"),
    ({"slave_ha": "yes"}, "slave_ha"),
    ({"default_shards_placement": "sparse"}, "default_shards_placement"),
])
async def test_bad_policy_gets_400_naming_the_setting(cluster3: LoopbackCluster, body: dict,  # type: ignore[type-arg]
                                                      field: str) -> None:
    async with httpx.AsyncClient(verify=False, auth=(cluster3.username, cluster3.password)) as client:  # noqa: S501
        before = (await client.get(f"{cluster3.url(1)}/v1/cluster/policy")).json()
        response = await client.put(f"{cluster3.url(1)}/v1/cluster/policy", json=body)
        assert response.status_code == 400, response.text
        assert field in response.json()["message"] and response.json().get("field") == field
        assert (await client.get(f"{cluster3.url(1)}/v1/cluster/policy")).json() == before


async def test_malformed_json_and_non_object_bodies(cluster3: LoopbackCluster) -> None:
    async with httpx.AsyncClient(verify=False, auth=(cluster3.username, cluster3.password)) as client:  # noqa: S501
        for content in (b"{not json", b"[1, 2]", b"\"text\"", b""):
            response = await client.post(f"{cluster3.url(0)}/v1/bdbs", content=content,
                                         headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (content, response.text)
            assert "error_code" in response.json()


async def test_duplicate_name_and_taken_port_are_conflicts(cluster3: LoopbackCluster) -> None:
    async with cluster3.api(0) as api:
        bdb = await api.create_bdb({"name": "dup-check", "memory_size": 16 * 1024 * 1024, "port": 12345})
        try:
            for body, field in (({"name": "dup-check", "memory_size": 1048576}, "name"),
                                ({"name": "other", "memory_size": 1048576, "port": 12345}, "port")):
                async with httpx.AsyncClient(verify=False, auth=(cluster3.username, cluster3.password)) as c:  # noqa: S501
                    response = await c.post(f"{cluster3.url(1)}/v1/bdbs", json=body)
                assert response.status_code == 409, response.text
                assert response.json()["field"] == field
            names = [b["name"] for b in await api.bdbs()]
            assert names.count("dup-check") == 1 and "other" not in names
        finally:
            await api.wait_bdb_status(bdb["uid"], timeout_s=120)
            await api.delete_bdb(bdb["uid"])
            await api.wait_bdb_status(bdb["uid"], "deleted", timeout_s=120)


async def test_wrong_or_missing_credentials_get_401(cluster3: LoopbackCluster) -> None:
    async with httpx.AsyncClient(verify=False) as client:  # noqa: S501
        for auth in (None, (cluster3.username, "wrong"), ("nobody", cluster3.password)):
            for index in (0, 1):
                for method, path in (("GET", "/v1/bdbs"), ("POST", "/v1/bdbs"), ("GET", "/v1/nodes"),
                                     ("GET", "/v1/bootstrap"), ("PUT", "/v1/license")):
                    response = await client.request(method, f"{cluster3.url(index)}{path}", auth=auth,
                                                    json={"name": "x", "memory_size": 1})
                    assert response.status_code == 401, (method, path, response.text)
                    assert response.json()["error_code"] == "unauthorized"
                    assert cluster3.password not in response.text


async def test_unknown_objects_are_404(cluster3: LoopbackCluster) -> None:
    async with httpx.AsyncClient(verify=False, auth=(cluster3.username, cluster3.password)) as client:  # noqa: S501
        for method, path in (("GET", "/v1/bdbs/999"), ("PUT", "/v1/bdbs/999"), ("DELETE", "/v1/bdbs/999"),
                             ("GET", "/v1/nodes/99"), ("GET", "/v1/actions/nope"), ("GET", "/v1/shards/999"),
                             ("POST", "/v1/nodes/99/actions/remove")):
            response = await client.request(method, f"{cluster3.url(1)}{path}",
                                            json={} if method == "PUT" else None)
            assert response.status_code == 404, (method, path, response.text)


async def test_replication_on_a_one_node_cluster_is_refused(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(1)
    async with httpx.AsyncClient(verify=False, auth=(cluster.username, cluster.password)) as client:  # noqa: S501
        response = await client.post(f"{cluster.url(0)}/v1/bdbs",
                                     json={"name": "r", "memory_size": 1048576, "replication": True})
        assert response.status_code == 406, response.text
        assert response.json()["field"] == "replication"
        assert (await client.get(f"{cluster.url(0)}/v1/bdbs")).json() == []


async def test_openapi_document_is_served(cluster3: LoopbackCluster) -> None:
    async with httpx.AsyncClient(verify=False) as client:  # noqa: S501
        document = (await client.get(f"{cluster3.url(0)}/v1/openapi.json")).json()
    assert "/v1/bdbs" in document["paths"] and "/v1/bootstrap/{action}" in document["paths"]
