"""How the daemon serves the console: requests by port, lifespan to the REST API, no console when its
port is taken (the REST API must not fail because of it)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from recluster.console import server
from recluster.node.config import NodeConfig

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
    assert server.with_console(api, cfg) == (api, None)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        monkeypatch.setenv(server.PORT_ENV, str(taken.getsockname()[1]))
        assert server.with_console(api, cfg) == (api, None)


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
        assert isinstance(app, server.PortDispatch) and app.api is api and app.console_port == port
        assert sock.getsockname() == ("127.0.0.1", port)
    finally:
        sock.close()


def test_the_consoles_own_requests_are_not_logged_line_by_line() -> None:
    quiet = server.QuietConsoleCalls()

    def record(url: str) -> logging.LogRecord:
        return logging.LogRecord("httpx", logging.INFO, "", 0, 'HTTP Request: %s %s "%s %d %s"',
                                 ("GET", url, "HTTP/1.1", 200, "OK"), None)

    assert not quiet.filter(record(server.IN_PROCESS + "/v1/cluster"))
    assert not quiet.filter(record("http://127.0.0.12:8070/metrics"))
    assert quiet.filter(record("https://127.0.0.12:9443/v1/internal/join"))
