"""A write sent to a node that is not the leader is forwarded: asked again while the leader does not
accept the connection (nothing reached it), never repeated once it did."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from recluster.node import app
from recluster.node.errors import ApiError

pytestmark = pytest.mark.unit


@dataclass
class FakeDaemon:
    """What `_forward` uses of the daemon: its name, the leader's URL, and the HTTP call."""

    outcomes: list[Exception | httpx.Response]
    leaders: list[str] = field(default_factory=lambda: ["https://rec-1:9443"])
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    cfg: Any = field(default_factory=lambda: SimpleNamespace(node_name="rec-0"))

    async def leader_url(self) -> str:
        return self.leaders[min(len(self.sent), len(self.leaders) - 1)]

    async def forward(self, method: str, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        self.sent.append((method, url, content))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _request(body: bytes = b'{"name": "db"}') -> Request:
    scope = {"type": "http", "method": "POST", "path": "/v1/bdbs", "raw_path": b"/v1/bdbs",
             "query_string": b"", "headers": [(b"content-type", b"application/json")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _forward(daemon: FakeDaemon) -> Any:
    return asyncio.run(app._forward(daemon, _request()))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "LEADER_RETRY_DELAY_S", 0.0)


def test_a_leader_that_did_not_accept_the_connection_is_asked_again() -> None:
    daemon = FakeDaemon([httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"),
                         httpx.Response(200, json={"uid": 1})],
                        leaders=["https://rec-1:9443", "https://rec-1:9443", "https://rec-2:9443"])
    response = _forward(daemon)
    assert response.status_code == 200 and response.body == b'{"uid":1}'
    # the same body each time, to whichever node leads at that moment
    assert daemon.sent == [("POST", "https://rec-1:9443/v1/bdbs", b'{"name": "db"}'),
                           ("POST", "https://rec-1:9443/v1/bdbs", b'{"name": "db"}'),
                           ("POST", "https://rec-2:9443/v1/bdbs", b'{"name": "db"}')]


def test_a_leader_that_never_accepts_gives_no_quorum_after_the_attempts() -> None:
    daemon = FakeDaemon([httpx.ConnectTimeout("slow")] * app.LEADER_CONNECT_ATTEMPTS)
    with pytest.raises(ApiError) as refused:
        _forward(daemon)
    assert len(daemon.sent) == app.LEADER_CONNECT_ATTEMPTS
    assert refused.value.status == 503 and refused.value.error_code == "cluster_no_quorum"
    assert "rec-1:9443" in refused.value.message and "nothing was changed" in refused.value.message


def test_a_request_the_leader_took_is_never_repeated() -> None:
    daemon = FakeDaemon([httpx.ReadTimeout("no answer"), httpx.Response(200)])
    with pytest.raises(ApiError) as failed:
        _forward(daemon)
    assert len(daemon.sent) == 1
    assert failed.value.status == 504 and failed.value.error_code == "leader_no_response"
    assert "may have been applied" in failed.value.message
