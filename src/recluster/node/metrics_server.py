"""The metrics endpoint (8070): HTTPS with the node's own certificate, no credentials (as Redis
Enterprise's exporter; the samples hold no secret), served by uvicorn in a thread of its own.

Not prometheus_client's `start_http_server(certfile=..., keyfile=...)`: it wraps the *listening*
socket, so the TLS handshake runs inside its accept loop, without a deadline, and one client that
connects and sends nothing (a port scan, a half-open connection) stops every scrape until it goes
away (seen with 0.26.0). uvicorn does each handshake on its own connection (bounded by asyncio,
60 s), and gets the same connection limits as the REST API (`recluster.http_limits`).

A scrape reads INFO from every shard with blocking calls (`ClusterCollector`), so the exposition
(prometheus_client's own WSGI app: content negotiation, gzip, 405 on methods other than GET) runs
in a worker thread: scrapes do not queue behind one slow scrape, and the REST API's
event loop is never the one that waits.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import uvicorn
from prometheus_client import make_wsgi_app
from prometheus_client.registry import Collector

from recluster.http_limits import Receive, Scope, Send, uvicorn_limits

Answer = tuple[int, list[tuple[str, str]], bytes]


class MetricsApp:
    """ASGI: prometheus_client's WSGI app for `registry`, called in a worker thread."""

    def __init__(self, registry: Collector) -> None:
        self.wsgi = make_wsgi_app(registry)

    def _render(self, environ: dict[str, Any]) -> Answer:
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers

        chunks: Iterable[bytes] = self.wsgi(environ, start_response)
        body = b"".join(chunks)
        return answer["status"], answer["headers"], body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and websockets are not served
            return
        # what prometheus_client's WSGI app reads of a request
        environ = {"REQUEST_METHOD": scope["method"], "PATH_INFO": scope["path"],
                   "QUERY_STRING": bytes(scope["query_string"]).decode("latin-1")}
        wanted = {b"accept": "HTTP_ACCEPT", b"accept-encoding": "HTTP_ACCEPT_ENCODING"}
        for name, value in scope["headers"]:
            key = wanted.get(bytes(name).lower())
            if key is not None:  # repeated headers joined, as a WSGI server does
                text = bytes(value).decode("latin-1")
                environ[key] = f"{environ[key]},{text}" if key in environ else text
        status, answer_headers, body = await asyncio.to_thread(self._render, environ)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer_headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def start_metrics_server(registry: Collector, addr: str, port: int, tls: ssl.SSLContext) -> uvicorn.Server:
    """Serve `registry` on https://addr:port/metrics from a daemon thread, every connection wrapped by
    `tls` (node/served_tls.py: the node's own certificate or a user's, swapped without a restart).
    The socket is bound here, so a port in use stops the node's start, as before."""
    config = uvicorn.Config(MetricsApp(registry), host=addr, port=port, log_level="warning",
                            log_config=None, access_log=False, lifespan="off", ws="none",
                            timeout_graceful_shutdown=2, **uvicorn_limits())
    config.load()
    config.ssl = tls
    sock = config.bind_socket()
    sock.listen(config.backlog)  # connections wait from now on, not from when the thread's loop runs
    # as for the REST API's sockets (runner.py): no Nagle delay on the body of a kept-alive connection
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="metrics-https", daemon=True).start()
    return server
