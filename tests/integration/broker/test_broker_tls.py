"""The broker serves HTTPS only: its certificate (from the CA the platform is told to trust) answers,
a plain-HTTP request on the same port gets no HTTP answer at all, and a client that does not trust
that CA refuses the connection (platforms send the broker's Basic credentials, never in clear)."""

from __future__ import annotations

import ssl

import httpx
import pytest
from tests.integration.broker.conftest import BrokerProcess

pytestmark = pytest.mark.integration


async def test_https_only(broker: BrokerProcess) -> None:
    async with broker.client() as client:
        response = await client.get("/v2/catalog")
        assert response.status_code == 200
        assert response.json()["services"][0]["name"] == "redis-test-rec"
    async with httpx.AsyncClient(timeout=5) as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.get(f"http://{broker.host}:{broker.port}/v2/catalog",
                            headers={"Authorization": broker.auth_header(), "X-Broker-API-Version": "2.17"})
    # the system's trust store does not know the broker's CA: the certificate is refused
    async with httpx.AsyncClient(timeout=5, verify=ssl.create_default_context()) as other:
        with pytest.raises(httpx.ConnectError):
            await other.get(f"{broker.url}/healthz")
