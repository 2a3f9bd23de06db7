"""REST API clients of the node pods that trust only the cluster's CA (used by the operator and the
rigger).

A node pod is reached by its IP (works in the cluster and from a host with routes to pods) but its
certificate is checked against the pod's stable DNS name: the name goes out as SNI and is the name
the certificate must carry. Nothing here ever skips verification."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from recluster.api.ports import API_PORT
from recluster.clients.cluster_api import ClusterApi


class _NamedServerTransport(httpx.AsyncHTTPTransport):
    """Connects to the URL's address, verifies the certificate for `server_name`."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server_name = server_name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["sni_hostname"] = self._server_name
        return await super().handle_async_request(request)


def ca_context(ca_pem: str) -> ssl.SSLContext:
    """Verification against this CA alone (not the system store)."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def node_api(
    address: str,
    server_name: str,
    ca_pem: str,
    username: str | None,
    password: str | None,
    timeout: float = 10.0,
    port: int = API_PORT,
) -> ClusterApi:
    """`address`:`port` (a pod's IP, or the local end of a port-forward), checked for `server_name`."""
    context = ca_context(ca_pem)
    transport = _NamedServerTransport(server_name, verify=context, retries=0)
    host = f"[{address}]" if ":" in address else address
    # `verify` is ignored when a transport is given: the transport carries the CA context.
    return ClusterApi(f"https://{host}:{port}", username, password, timeout=timeout, transport=transport)
