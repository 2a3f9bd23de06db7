"""A standby operator replica is not behind the admission Service: /readyz answers 200 only once the
replica leads and its webhook server listens, the Deployment's readiness probe asks /readyz, and the
admission Service (no publishNotReadyAddresses) selects the operator pods; the metrics Service keeps
the standby (publishNotReadyAddresses). The two replicas against a real API server:
tests/integration/operator/test_operator_control_plane.py."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from recluster.operator.http import Readiness, start_http
from recluster.operator.startup import Settings
from recluster.operator.tls import issue_server_certificate
from recluster.operator.webhook import webhook_server

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ready_only_when_leading_and_serving_the_webhook() -> None:
    assert Readiness(leading=False).why_not() == "standby: another replica holds the Lease"
    assert Readiness(leading=True).why_not() is None
    not_listening = "the admission webhook server is not listening yet"
    assert Readiness(leading=True, webhook=True).why_not() == not_listening
    assert Readiness(leading=True, webhook=True, webhook_serving=True).why_not() is None
    assert Readiness(leading=False, webhook=True, webhook_serving=True).why_not() is not None


async def test_readyz_follows_the_state() -> None:
    port = _free_port()
    state = Readiness(leading=False, webhook=True)
    runner = await start_http("127.0.0.1", port, state)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 503 and (await response.json())["ready"] is False
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200  # alive all the same: not restarted
            state.leading = state.webhook_serving = True
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200 and await response.json() == {"ready": True}
    finally:
        await runner.cleanup()


async def test_the_webhook_server_says_when_it_listens(tmp_path: Path) -> None:
    material = issue_server_certificate("127.0.0.1", ["127.0.0.1"])
    (tmp_path / "tls.crt").write_text(material.certificate_pem)
    (tmp_path / "tls.key").write_text(material.private_key_pem)
    port = _free_port()
    settings = Settings(namespaces=("ns",), pod_namespace="ns", identity="op", webhook_port=port,
                        webhook_host="127.0.0.1", webhook_names=("127.0.0.1",))
    seen: list[bool] = []
    server = webhook_server(settings, tmp_path / "tls.crt", tmp_path / "tls.key", on_serving=seen.append)

    async def review(**_: Any) -> None:
        return None

    async with server:  # as kopf runs it: its exit closes the server's generators
        serving = server(review)  # type: ignore[arg-type]
        await serving.__anext__()
        assert seen == [True]
        _, writer = await asyncio.open_connection("127.0.0.1", port)  # it accepts connections now
        writer.close()
    assert seen == [True, False]


def _load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def test_the_manifests_route_webhook_calls_to_the_ready_replica_only() -> None:
    (deployment,) = _load("operator.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (admission,) = _load("admission-service.yaml")
    assert admission["spec"]["selector"].items() <= pod_labels.items()
    assert not admission["spec"].get("publishNotReadyAddresses")
    (metrics,) = _load("metrics-service.yaml")
    assert metrics["spec"]["publishNotReadyAddresses"] is True  # the standby is scraped too
