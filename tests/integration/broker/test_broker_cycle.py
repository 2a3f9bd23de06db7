"""The full OSB cycle against a real 3-node cluster through the real broker process: catalog,
provision (with the broker SIGKILLed in the middle and restarted), poll, update, bind (a user of the
binding's own on the cluster), write and read with the binding's credentials (directly and through
Sentinel), fetch, unbind (the user is gone: new connections refused, an open one closed),
deprovision."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
from redis.sentinel import Sentinel
from tests.integration.broker.conftest import (
    BrokerProcess,
    api_paused,
    binding_grants,
    closed,
    plan_ids,
    poll,
    redis_client,
    refused,
    unfinished,
    until,
)

pytestmark = pytest.mark.integration

IDENTITY = "kubernetes " + base64.b64encode(json.dumps({"username": "alice", "uid": "42"}).encode()).decode()


async def test_full_cycle_with_a_restart_during_provision(broker: BrokerProcess) -> None:
    instance_id = f"inst-{uuid.uuid4()}"
    binding_id = f"bind-{uuid.uuid4()}"
    async with broker.client(**{"X-Broker-API-Originating-Identity": IDENTITY}) as client:
        response = await client.get("/v2/catalog")
        assert response.status_code == 200
        catalog = response.json()
        service_id, plans = plan_ids(catalog)
        assert set(plans) == {"small", "medium", "large"}
        assert catalog["services"][0]["instances_retrievable"] is True

        provision = {"service_id": service_id, "plan_id": plans["small"], "organization_guid": "org-1",
                     "space_guid": "space-1", "context": {"platform": "kubernetes", "namespace": "apps"},
                     "parameters": {"eviction_policy": "allkeys-lru"}}
        # the REST API is held, so the broker is surely in the middle of the provision when it dies
        with api_paused(broker.cluster):
            response = await client.put(f"/v2/service_instances/{instance_id}",
                                        params={"accepts_incomplete": "true"}, json=provision)
            assert response.status_code == 202, response.text
            operation = response.json()["operation"]
            broker.kill()
            assert (operation, "in progress") in unfinished(broker)
            broker.start()

    async with broker.client() as client:
        # the restarted broker resumed the operation and finishes it
        result = await poll(client, instance_id, operation)
        assert result["state"] == "succeeded", result
        assert "resuming provision" in broker.log()

        # the same request again: 200, identical; a different one: 409
        url = f"/v2/service_instances/{instance_id}"
        response = await client.put(url, params={"accepts_incomplete": "true"}, json=provision)
        assert response.status_code == 200, response.text
        other = dict(provision, plan_id=plans["medium"])
        response = await client.put(url, params={"accepts_incomplete": "true"}, json=other)
        assert response.status_code == 409, response.text
        assert response.json()["description"]

        response = await client.get(url)
        assert response.status_code == 200
        assert response.json()["plan_id"] == plans["small"]
        assert response.json()["parameters"] == {"eviction_policy": "allkeys-lru"}

        # update: plan change small -> medium (replicated, AOF)
        response = await client.patch(url, params={"accepts_incomplete": "true"},
                                      json={"service_id": service_id, "plan_id": plans["medium"],
                                            "previous_values": {"plan_id": plans["small"]}})
        assert response.status_code == 202, response.text
        result = await poll(client, instance_id, response.json()["operation"])
        assert result["state"] == "succeeded", result
        response = await client.get(url)
        assert response.json()["plan_id"] == plans["medium"]

        # bind: credentials, then an identical repeat (200)
        binding = {"service_id": service_id, "plan_id": plans["medium"],
                   "bind_resource": {"app_guid": "app-1"}}
        bind_url = f"{url}/service_bindings/{binding_id}"
        response = await client.put(bind_url, json=binding)
        assert response.status_code == 201, response.text
        credentials = response.json()["credentials"]
        endpoints = response.json()["endpoints"]
        port = str(credentials["port"])
        assert endpoints[0] == {"host": credentials["host"], "ports": [port], "protocol": "tcp"}
        # medium is replicated: the replica's node (same port) and the three Sentinels are listed too
        assert len(endpoints) == 5 and len({e["host"] for e in endpoints[:2]}) == 2
        response = await client.put(bind_url, json=binding)
        assert response.status_code == 200
        assert response.json()["credentials"] == credentials
        response = await client.put(bind_url, json=dict(binding, bind_resource={"app_guid": "app-2"}))
        assert response.status_code == 409

        # a user of the binding's own: its name, a password the broker made, the plan's Redis ACL
        # ('Full Access') on this database only, and no REST API or console (management 'none')
        username, password = credentials["username"], credentials["password"]
        assert username.startswith("osb-") and len(password) >= 32
        assert credentials["uri"] == f"redis://{username}:{password}@{credentials['host']}:{port}"
        assert "shared_password" not in credentials and "note" not in credentials
        assert len(credentials["sentinels"]) == 3
        async with broker.cluster.api(0) as api:
            grants = await binding_grants(api, username)
            database_password = (await api.bdb(grants["bdb_uid"]))["authentication_redis_pass"]
        assert grants["management"] == "none" and grants["acl"] == "Full Access"
        assert grants["bdb_name"] == credentials["name"]
        assert password != database_password and database_password not in response.text

    # write and read with the credentials: the URI, then Sentinel discovery by the database name
    direct = redis_client(credentials["uri"])
    try:
        await until("the binding's user on the shards", lambda: direct.ping())
        await direct.set("broker-key", "broker-value")
        assert await direct.get("broker-key") == b"broker-value"
        assert (await direct.config_get("maxmemory-policy"))["maxmemory-policy"] == "allkeys-lru"
        assert await direct.acl_whoami() == username
    finally:
        await direct.aclose()
    sentinel = Sentinel([(s["host"], s["port"]) for s in credentials["sentinels"]], socket_timeout=2)
    master = sentinel.master_for(credentials["sentinel_master_name"], username=username, password=password,
                                 socket_timeout=2)
    assert await asyncio.to_thread(master.get, "broker-key") == b"broker-value"
    master.close()
    held = redis_client(credentials["uri"])  # open across the unbind
    assert await held.ping()

    async with broker.client() as client:
        response = await client.get(bind_url)
        assert response.status_code == 200
        assert response.json()["credentials"] == credentials

        # unbind, then again: 410. The user is gone: its open connection is closed, a new one refused
        ids = {"service_id": service_id, "plan_id": plans["medium"]}
        response = await client.delete(bind_url, params=ids)
        assert response.status_code == 200 and response.json() == {}
        response = await client.delete(bind_url, params=ids)
        assert response.status_code == 410
        assert (await client.get(bind_url)).status_code == 404
    try:
        await until("the open connection of the unbound user closed", lambda: closed(held))
    finally:
        await held.aclose()
    await until("a new connection of the unbound user refused", lambda: refused(credentials["uri"]))
    async with broker.cluster.api(0) as api:
        assert await binding_grants(api, username) == {}

    async with broker.client() as client:
        # deprovision: 202, polled until gone; the database is gone from the cluster
        response = await client.delete(url, params=dict(ids, accepts_incomplete="true"))
        assert response.status_code == 202, response.text
        result = await poll(client, instance_id, response.json()["operation"], gone_ok=True)
        assert result["state"] == "gone"  # 410: the success of an asynchronous delete
        response = await client.delete(url, params=dict(ids, accepts_incomplete="true"))
        assert response.status_code == 410
        response = await client.get(url)
        assert response.status_code == 404

    async with broker.cluster.api(0) as api:
        names = [b["name"] for b in await api.bdbs()]
    assert not [n for n in names if instance_id in n], names
