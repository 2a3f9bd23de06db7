"""Run one node: the REST API over HTTPS (uvicorn), the metrics endpoint over HTTPS (uvicorn, its own
thread) and the daemon's loops."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl

import uvicorn
from prometheus_client.registry import CollectorRegistry

from recluster.console.server import with_console
from recluster.http_limits import uvicorn_limits
from recluster.node.app import create_app
from recluster.node.config import NodeConfig
from recluster.node.daemon import NodeDaemon
from recluster.node.metrics import ClusterCollector
from recluster.node.metrics_server import start_metrics_server
from recluster.node.served_tls import API, CONSOLE, METRICS, ServedTls
from recluster.node.tls import ensure_certificate

log = logging.getLogger(__name__)


def run_node(cfg: NodeConfig, handoff_timeout: float = 30.0) -> None:
    # Private files and directories: the node's own (configs, membership, TLS key) and those of its
    # redis children, which inherit the umask: the CCS's AOF and RDB hold the cluster state with the
    # database passwords, and Sentinel's CONFIG REWRITE of sentinel.conf and of a shard's redis.conf
    # (after a failover) creates the file anew with mode 0644 & ~umask.
    os.umask(0o077)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cert, key = ensure_certificate(cfg.cert_dir, [cfg.node_name, cfg.addr])
    # one reloadable TLS context per HTTPS server: a user's certificate (update_cert) replaces the
    # node's own for new connections, without a restart (node/served_tls.py)
    served = ServedTls(cert, key, cfg.data_dir / "served-tls")
    registry = CollectorRegistry()
    registry.register(ClusterCollector(cfg))
    start_metrics_server(registry, cfg.addr, cfg.metrics_port, served.context(METRICS))
    daemon = NodeDaemon(cfg)
    daemon.rt.served_tls = served
    app = create_app(daemon, handoff_timeout=handoff_timeout)
    # the web console (recluster.console) on its own port; each with its access log (recluster.logs)
    app, console_socket = with_console(app, cfg)
    # log_config None: uvicorn's own lines go through the root logger (plain or JSON, recluster.logs);
    # its access log is off, ours leaves the query string out
    config = uvicorn.Config(app, host=cfg.addr, port=cfg.api_port, log_level="warning", log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=2,
                            **uvicorn_limits())
    config.load()
    config.ssl = served.context(API)
    server = _Listeners(config, {console_socket: served.context(CONSOLE)} if console_socket else {})
    log.info("node %s: REST API https://%s:%d, sentinel %d, metrics %d, CCS %d, data %s", cfg.node_name,
             cfg.addr, cfg.api_port, cfg.sentinel_port, cfg.metrics_port, cfg.ccs_port, cfg.data_dir)
    sockets = [config.bind_socket()]
    for sock in [*sockets, *([console_socket] if console_socket else [])]:
        # asyncio turns Nagle off only on sockets made with proto IPPROTO_TCP; these have proto 0, so
        # a response's body (a second small write after the headers) would wait for the client's
        # delayed ACK: about 40 ms on every request of a kept-alive connection. Accepted sockets
        # inherit TCP_NODELAY from the listening socket (Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    asyncio.run(server.serve(sockets=sockets))


class _Listeners(uvicorn.Server):
    """uvicorn's server, plus listeners of the same app with a TLS context of their own (the console:
    its certificate, `cm`, is not the REST API's). uvicorn gives every socket it is handed the one
    `config.ssl`, so these are added after its own start, as it adds its own (uvicorn 0.54, pinned),
    and closed with them (`shutdown` closes every server in `self.servers`)."""

    def __init__(self, config: uvicorn.Config, others: dict[socket.socket, ssl.SSLContext]) -> None:
        super().__init__(config)
        self.others = others

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        for sock, context in self.others.items():
            def protocol() -> asyncio.Protocol:
                return self.config.http_protocol_class(  # type: ignore[call-arg]
                    config=self.config, server_state=self.server_state, app_state=self.lifespan.state)
            self.servers.append(await loop.create_server(protocol, sock=sock, ssl=context,
                                                         backlog=self.config.backlog))
