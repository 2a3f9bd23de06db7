"""The service broker's access log (recluster.logs.AccessLog): a line per request with the method, path
and status, and neither the Basic credentials, nor the query string, nor a header's value."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest
from tests.integration.broker.conftest import BROKER_USER, BrokerProcess

pytestmark = pytest.mark.integration


async def test_a_request_with_basic_auth_leaves_a_line_without_credentials(broker: BrokerProcess) -> None:
    token = os.urandom(8).hex()
    async with broker.client(**{"X-Api-Key": f"key-{token}"}) as http:
        answer = await http.get("/v2/catalog", params={"token": token})
        assert answer.status_code == 200
        refused = await http.get("/v2/catalog", headers={"Authorization": "Basic " + base64.b64encode(
            f"{BROKER_USER}:wrong-{token}".encode()).decode()})
        assert refused.status_code == 401
    for _ in range(100):  # the line is written once the answer is sent
        if '"GET /v2/catalog" 401' in broker.log():
            break
        await asyncio.sleep(0.2)
    log = broker.log()
    assert '"GET /v2/catalog" 200' in log and '"GET /v2/catalog" 401' in log, log[-3000:]
    assert "recluster.access" in log
    assert broker.password not in log and broker.auth_header().split()[1] not in log
    assert token not in log, "the query string or a header reached the log"
