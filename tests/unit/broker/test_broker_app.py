"""The HTTP layer in process (no cluster is called): auth before anything else, JSON error bodies
even for an unexpected failure, the request identity echoed."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from recluster.broker.app import BasicCredentials, Broker, BrokerSettings, create_app
from recluster.broker.catalog import build_catalog

pytestmark = pytest.mark.unit

AUTH = "Basic " + base64.b64encode(b"platform:pw").decode()


@pytest_asyncio.fixture(loop_scope="session")
async def app_and_broker(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Broker]]:
    settings = BrokerSettings(catalog=build_catalog(None), data_dir=tmp_path, api_url="https://127.0.0.1:1",
                              api_credentials=BasicCredentials("admin", "x"),
                              auth=BasicCredentials("platform", "pw"))
    app = create_app(settings)
    broker = Broker(settings)  # what the lifespan would create; no REST call happens here
    app.state.broker = broker
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker") as client:
        yield client, broker
    await broker.api.aclose()


async def test_auth_comes_first(app_and_broker: tuple[httpx.AsyncClient, Broker]) -> None:
    client, _ = app_and_broker
    response = await client.put("/v2/service_instances/x", content="not json")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    response = await client.get("/v2/catalog", headers={"Authorization": "Basic !!!"})
    assert response.status_code == 401


async def test_identity_echo_and_an_unexpected_failure_is_a_json_500(
        app_and_broker: tuple[httpx.AsyncClient, Broker]) -> None:
    client, broker = app_and_broker
    headers = {"Authorization": AUTH, "X-Broker-API-Version": "2.17", "X-Broker-API-Request-Identity": "r-1"}
    response = await client.get("/v2/catalog", headers=headers)
    assert response.status_code == 200 and response.headers["X-Broker-API-Request-Identity"] == "r-1"
    etag = response.headers["ETag"]
    response = await client.get("/v2/catalog", headers={**headers, "If-None-Match": etag})
    assert response.status_code == 304 and response.headers["ETag"] == etag and not response.content
    response = await client.get("/v2/catalog", headers={**headers, "If-None-Match": '"other"'})
    assert response.status_code == 200
    broker.store.close()  # every read now fails inside the handler
    response = await client.get("/v2/service_instances/x", headers=headers)
    assert response.status_code == 500
    assert response.json() == {"description": "internal error in the broker; see its log"}
