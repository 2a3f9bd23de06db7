"""Requests that break the specification get its status and error body from the real broker, and
change nothing on the cluster."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from tests.integration.broker.conftest import BrokerProcess

pytestmark = pytest.mark.integration


async def ids(broker: BrokerProcess) -> tuple[str, dict[str, str]]:
    async with broker.client() as client:
        service = (await client.get("/v2/catalog")).json()["services"][0]
    return service["id"], {p["name"]: p["id"] for p in service["plans"]}


def provision_body(service_id: str, plan_id: str, **extra: Any) -> dict[str, Any]:
    return {"service_id": service_id, "plan_id": plan_id, "organization_guid": "org", "space_guid": "space",
            **extra}


async def test_auth_and_version_header(broker: BrokerProcess) -> None:
    async with httpx.AsyncClient(base_url=broker.url, timeout=30, verify=broker.verify) as raw:
        response = await raw.get("/v2/catalog", headers={"X-Broker-API-Version": "2.17"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        response = await raw.get("/v2/catalog", headers={"X-Broker-API-Version": "2.17",
                                                         "Authorization": "Basic cGxhdGZvcm06d3Jvbmc="})
        assert response.status_code == 401
        assert "wrong" not in response.text
        # missing: a malformed request (400, the spec since 2.16); a version not served: 412
        response = await raw.get("/v2/catalog", headers={"Authorization": broker.auth_header()})
        assert response.status_code == 400
        assert "X-Broker-API-Version" in response.json()["description"]
        response = await raw.get("/v2/catalog", headers={"Authorization": broker.auth_header(),
                                                         "X-Broker-API-Version": "two"})
        assert response.status_code == 400
        for version in ("2.13", "3.0", "1.17"):
            response = await raw.get("/v2/catalog", headers={"Authorization": broker.auth_header(),
                                                             "X-Broker-API-Version": version})
            assert response.status_code == 412, version
            assert response.json()["description"]
        response = await raw.get("/v2/catalog", headers={"Authorization": broker.auth_header(),
                                                         "X-Broker-API-Version": "2.14",
                                                         "X-Broker-API-Request-Identity": "req-7"})
        assert response.status_code == 200
        assert response.headers["X-Broker-API-Request-Identity"] == "req-7"


async def test_bad_provision_requests_change_nothing(broker: BrokerProcess) -> None:
    service_id, plans = await ids(broker)
    instance = f"bad-{uuid.uuid4()}"
    url = f"/v2/service_instances/{instance}"
    incomplete = {"accepts_incomplete": "true"}
    async with broker.client() as client:
        cases: list[tuple[dict[str, Any] | str, dict[str, str], int, str | None]] = [
            (provision_body(service_id, "no-such-plan"), incomplete, 400, None),
            (provision_body("no-such-service", plans["small"]), incomplete, 400, None),
            (provision_body(service_id, plans["small"], parameters={"eviction_policy": "most-recent"}),
             incomplete, 400, None),
            (provision_body(service_id, plans["small"], parameters={"shards": 4}), incomplete, 400, None),
            ({"service_id": service_id, "plan_id": plans["small"]}, incomplete, 400, None),
            ("{not json", incomplete, 400, None),
            (provision_body(service_id, plans["small"]), {}, 422, "AsyncRequired"),
            (provision_body(service_id, plans["small"]), {"accepts_incomplete": "false"}, 422,
             "AsyncRequired"),
        ]
        for body, params, status, error in cases:
            if isinstance(body, str):
                response = await client.put(url, params=params, content=body,
                                            headers={"Content-Type": "application/json"})
            else:
                response = await client.put(url, params=params, json=body)
            assert response.status_code == status, (body, response.text)
            assert response.json().get("error") == error, response.text
            assert response.json()["description"]
        # a password-like parameter value is never echoed back
        response = await client.put(url, params=incomplete,
                                    json=provision_body(service_id, plans["small"],
                                                        parameters={"persistence": "hunter2-secret"}))
        assert response.status_code == 400 and "hunter2-secret" not in response.text

        # nothing was created: the instance is unknown everywhere
        assert (await client.get(url)).status_code == 404
        assert (await client.get(f"{url}/last_operation")).status_code == 404
        response = await client.delete(url, params={"service_id": service_id, "plan_id": plans["small"],
                                                    "accepts_incomplete": "true"})
        assert response.status_code == 410
    async with broker.cluster.api(0) as api:
        assert not [b for b in await api.bdbs() if instance in b["name"]]


async def test_unknown_instance_and_binding(broker: BrokerProcess) -> None:
    service_id, plans = await ids(broker)
    url = f"/v2/service_instances/missing-{uuid.uuid4()}"
    query = {"service_id": service_id, "plan_id": plans["small"]}
    async with broker.client() as client:
        response = await client.patch(url, params={"accepts_incomplete": "true"},
                                      json={"service_id": service_id, "plan_id": plans["medium"]})
        assert response.status_code == 404
        response = await client.put(f"{url}/service_bindings/b1", json=query)
        assert response.status_code == 404
        assert (await client.get(f"{url}/service_bindings/b1")).status_code == 404
        assert (await client.get(f"{url}/service_bindings/b1/last_operation")).status_code == 404
        assert (await client.delete(f"{url}/service_bindings/b1", params=query)).status_code == 410
        # DELETE without the required query parameters is malformed
        assert (await client.delete(url, params={"accepts_incomplete": "true"})).status_code == 400
        assert (await client.delete(f"{url}/service_bindings/b1")).status_code == 400
        # a malformed originating identity
        response = await client.put(f"{url}/service_bindings/b1", json=query,
                                    headers={"X-Broker-API-Originating-Identity": "kubernetes not-base64!"})
        assert response.status_code == 400
