"""Run one node: the REST API over HTTPS (uvicorn), the metrics endpoint over HTTPS (uvicorn, its own
thread) and the daemon's loops."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import uvicorn
from prometheus_client.registry import CollectorRegistry

from recluster.console.server import with_console
from recluster.http_limits import uvicorn_limits
from recluster.node.app import create_app
from recluster.node.config import NodeConfig
from recluster.node.daemon import NodeDaemon
from recluster.node.metrics import ClusterCollector
from recluster.node.metrics_server import start_metrics_server
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
    registry = CollectorRegistry()
    registry.register(ClusterCollector(cfg))
    start_metrics_server(registry, cfg.addr, cfg.metrics_port, cert, key)  # same certificate as the API
    daemon = NodeDaemon(cfg)
    app = create_app(daemon, handoff_timeout=handoff_timeout)
    # the web console (recluster.console) on its own port; each with its access log (recluster.logs)
    app, console_socket = with_console(app, cfg)
    # log_config None: uvicorn's own lines go through the root logger (plain or JSON, recluster.logs);
    # its access log is off, ours leaves the query string out
    config = uvicorn.Config(app, host=cfg.addr, port=cfg.api_port, ssl_certfile=str(cert),
                            ssl_keyfile=str(key), log_level="warning", log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=2, **uvicorn_limits())
    server = uvicorn.Server(config)
    log.info("node %s: REST API https://%s:%d, sentinel %d, metrics %d, CCS %d, data %s", cfg.node_name,
             cfg.addr, cfg.api_port, cfg.sentinel_port, cfg.metrics_port, cfg.ccs_port, cfg.data_dir)
    sockets = [config.bind_socket(), console_socket] if console_socket else None  # the console's too
    for sock in sockets or ():
        # asyncio turns Nagle off only on sockets made with proto IPPROTO_TCP; these have proto 0, so
        # a response's body (a second small write after the headers) would wait for the client's
        # delayed ACK: about 40 ms on every request of a kept-alive connection. Accepted sockets
        # inherit TCP_NODELAY from the listening socket (Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    asyncio.run(server.serve(sockets=sockets))
