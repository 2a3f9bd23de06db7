"""How the daemon serves the console: requests by port, lifespan to the REST API, no console when its
port is taken (the REST API must not fail because of it)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Gauge
from prometheus_client.registry import CollectorRegistry

from recluster.console import server
from recluster.console.cluster_sessions import MEMBERSHIP_FILE, ClusterSecret
from recluster.console.sessions import Session, SessionKeys
from recluster.logs import AccessLog
from recluster.node.config import NodeConfig
from recluster.node.identity import Membership
from recluster.node.metrics_server import start_metrics_server
from recluster.node.served_tls import server_context
from recluster.node.tls import ensure_certificate

pytestmark = pytest.mark.unit


def recorder(name: str, seen: list[tuple[str, str]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((name, scope["type"]))

    return app


def test_requests_go_by_port_and_lifespan_goes_to_the_api() -> None:
    seen: list[tuple[str, str]] = []
    dispatch = server.PortDispatch(recorder("api", seen), recorder("console", seen), 8443)

    async def run() -> None:
        await dispatch({"type": "http", "server": ("127.0.0.11", 8443)}, None, None)
        await dispatch({"type": "http", "server": ("127.0.0.11", 9443)}, None, None)
        await dispatch({"type": "lifespan"}, None, None)

    asyncio.run(run())
    assert seen == [("console", "http"), ("api", "http"), ("api", "lifespan")]


def test_no_console_when_turned_off_or_its_port_is_taken(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    api = recorder("api", [])
    cfg = NodeConfig(addr="127.0.0.1", data_dir=tmp_path)
    monkeypatch.setenv(server.PORT_ENV, "0")

    def api_alone() -> bool:  # the REST API with its access log, no console
        app, sock = server.with_console(api, cfg)
        return sock is None and isinstance(app, AccessLog) and app.app is api

    assert api_alone()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        monkeypatch.setenv(server.PORT_ENV, str(taken.getsockname()[1]))
        assert api_alone()


def test_console_served_beside_the_api_on_its_own_socket(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(server.PORT_ENV, str(port))
    api = recorder("api", [])
    app, sock = server.with_console(api, NodeConfig(addr="127.0.0.1", data_dir=tmp_path))
    assert sock is not None
    try:
        assert isinstance(app, server.PortDispatch) and app.console_port == port
        assert app.api.app is api and app.api.server == "api" and app.console.server == "console"
        assert sock.getsockname() == ("127.0.0.1", port)
    finally:
        sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("trust", "read"), [("the node's CA", True), ("another CA", False), ("none", True)])
def test_console_reads_metrics_over_https_checking_them_like_the_node_checks_peers(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trust: str, read: bool) -> None:
    """Against `ca.pem` beside the node's certificate when there is one (peer_verification); without
    one (standalone, self-signed) nothing can be checked, as for the join."""
    cert, key = ensure_certificate(tmp_path / "metrics-node", ["127.0.0.1"])
    registry = CollectorRegistry()
    Gauge("recluster_node_uptime_seconds", "uptime", registry=registry).set(42)
    port = free_port()
    metrics = start_metrics_server(registry, "127.0.0.1", port, server_context(cert, key))
    cfg = NodeConfig(addr="127.0.0.1", data_dir=tmp_path / "node")
    if trust != "none":
        cfg.cert_dir.mkdir(parents=True)
        other, _ = ensure_certificate(tmp_path / "other", ["127.0.0.1"])
        shutil.copy(cert if trust == "the node's CA" else other, cfg.cert_dir / "ca.pem")
    monkeypatch.setenv(server.PORT_ENV, str(free_port()))
    app, sock = server.with_console(recorder("api", []), cfg)
    assert sock is not None
    try:
        console = app.console.app.state.console
        node = {"name": "127.0.0.1", "status": "active", "ports": {"metrics": port}}
        assert console.metrics_url(node) == f"https://127.0.0.1:{port}/metrics"

        async def scrape() -> dict[str, float]:
            try:
                return await console._node_metrics(node)  # type: ignore[no-any-return]
            finally:
                await console._metrics_http.aclose()

        values = asyncio.run(scrape())
        assert values == ({"uptime": 42.0} if read else {}), trust
    finally:
        sock.close()
        metrics.should_exit = True


def test_the_consoles_own_requests_are_not_logged_line_by_line() -> None:
    quiet = server.QuietConsoleCalls()

    def record(url: str) -> logging.LogRecord:
        return logging.LogRecord("httpx", logging.INFO, "", 0, 'HTTP Request: %s %s "%s %d %s"',
                                 ("GET", url, "HTTP/1.1", 200, "OK"), None)

    assert not quiet.filter(record(server.IN_PROCESS + "/v1/cluster"))
    assert not quiet.filter(record("https://127.0.0.12:8070/metrics"))
    assert quiet.filter(record("https://127.0.0.12:9443/v1/internal/join"))


def test_session_keys_come_from_the_nodes_membership_file(tmp_path: Path) -> None:
    """The console reads the CCS password and cluster name where the node keeps them
    (identity.Membership), derives its keys from them, and follows the file when it changes."""
    secret = ClusterSecret(tmp_path)
    assert secret.keys() is None and secret.ccs_password() is None  # in no cluster yet
    Membership(1, "cluster.local", "ccs-password-1", []).save(tmp_path)
    assert Membership.path(tmp_path) == tmp_path / MEMBERSHIP_FILE
    keys = secret.keys()
    assert keys is not None and secret.ccs_password() == "ccs-password-1"
    token = keys.seal(Session("sid", "admin", "pw"))
    assert SessionKeys(b"ccs-password-1", b"cluster.local").open(token) is not None
    assert SessionKeys(b"ccs-password-1", b"other.local").open(token) is None
    Membership(1, "cluster.local", "ccs-password-2", []).save(tmp_path)  # joined another cluster
    renewed = secret.keys()
    assert renewed is not None and renewed.open(token) is None
    Membership.forget(tmp_path)
    assert secret.keys() is None
