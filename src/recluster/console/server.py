"""How the node daemon serves the console: the same uvicorn server, process and TLS as the REST API,
on a second listening socket (the console port, 8443). Requests are told apart by the port they
arrived on; lifespan events go to the REST API app (it runs the daemon)."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Protocol

import httpx

from recluster.api.ports import CONSOLE_PORT
from recluster.clients.peer_tls import peer_verification
from recluster.console.app import METRICS_TIMEOUT, create_console_app
from recluster.console.cluster_sessions import CcsRevocations, ClusterSecret
from recluster.console.sessions import SessionTokens
from recluster.logs import AccessLog

log = logging.getLogger(__name__)

PORT_ENV = "RECLUSTER_NODE_CONSOLE_PORT"  # 0 turns the console off
IN_PROCESS = "https://node-api.in-process"  # base URL of the console's calls into the REST API app


class ServingNode(Protocol):
    """What the console needs of the node that serves it (the node daemon's NodeConfig has it): its
    address, its certificates, and where its membership file (the cluster's shared secret) and its
    copy of the CCS (the cluster's logouts) are."""

    @property
    def addr(self) -> str: ...

    @property
    def cert_dir(self) -> Path: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def ccs_port(self) -> int: ...


def cluster_sessions(cfg: ServingNode) -> SessionTokens:
    """Sessions every node of this node's cluster honours: keys from the secret the nodes share,
    logouts in the CCS (cluster_sessions.py)."""
    secret = ClusterSecret(cfg.data_dir)
    return SessionTokens(secret.keys, CcsRevocations(cfg.addr, cfg.ccs_port, secret))


class QuietConsoleCalls(logging.Filter):
    """Keeps httpx's one-line-per-request INFO log for the daemon's own calls, not for the console's
    (several every 2 s while someone is logged in: the REST API in-process, the nodes' metrics)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        url = str(args[1]) if len(args) > 1 else ""
        return not (url.startswith(IN_PROCESS) or url.endswith("/metrics"))


class PortDispatch:
    """ASGI: requests to `console_port` go to `console`, everything else (lifespan too) to `api`."""

    def __init__(self, api: Any, console: Any, console_port: int) -> None:
        self.api, self.console, self.console_port = api, console, console_port

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        server = scope.get("server") or (None, None)
        if scope["type"] in ("http", "websocket") and server[1] == self.console_port:
            await self.console(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def console_port() -> int:
    return int(os.environ.get(PORT_ENV, CONSOLE_PORT))


def with_console(api_app: Any, cfg: ServingNode) -> tuple[Any, socket.socket | None]:
    """(the ASGI app to serve, the console's bound socket); the API app alone and None when the console
    is off or its port cannot be bound (logged: the REST API must not fail because of the console).
    The REST API and the console each write an access log (recluster.logs.AccessLog); the console's
    own calls into the REST API, in-process, are not access-logged."""
    port = console_port()
    served_api = AccessLog(api_app, "api")
    if port == 0:
        return served_api, None
    try:
        sock = socket.create_server((cfg.addr, port))
    except OSError as exc:
        log.warning("web console not started: cannot listen on %s:%d (%s)", cfg.addr, port, exc)
        return served_api, None
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app), base_url=IN_PROCESS, timeout=30.0)
    # The nodes' metrics endpoints (HTTPS, by node name) are checked the way a node checks the node it
    # joins: against the cluster CA when the node has one. Without one (a standalone node with its
    # self-signed certificate) there is no trust anchor for the other nodes' certificates, so, as for
    # the join, they are not checked; the console sends nothing there and reads only memory and uptime.
    metrics_http = httpx.AsyncClient(verify=peer_verification(cfg.cert_dir), timeout=METRICS_TIMEOUT)
    logging.getLogger("httpx").addFilter(QuietConsoleCalls())
    log.info("web console: https://%s:%d", cfg.addr, port)
    console = create_console_app(client, metrics_http=metrics_http, sample_every_s=2.0,
                                 tokens=cluster_sessions(cfg))
    return PortDispatch(served_api, AccessLog(console, "console"), port), sock
