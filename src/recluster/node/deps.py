"""Request dependencies: the daemon, and Basic authentication against the cluster's credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from recluster.http_auth import parse_basic
from recluster.node.daemon import NodeDaemon
from recluster.node.errors import ApiError


async def get_daemon(request: Request) -> NodeDaemon:
    """Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop (and
    the GIL taken back from the node's loops) on every request."""
    daemon: NodeDaemon = request.app.state.daemon
    return daemon


class Unauthorized(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthorized", message)


async def check_credentials(daemon: NodeDaemon, header: str | None) -> None:
    creds = parse_basic(header)
    if creds is None:
        raise Unauthorized("this call needs HTTP Basic credentials of the cluster")
    state = await daemon.recent_state()
    if not daemon.credentials.check(creds[0], creds[1], state.cluster.username, state.cluster.password_hash):
        raise Unauthorized("wrong username or password")


async def authenticated(request: Request) -> None:
    await check_credentials(await get_daemon(request), request.headers.get("authorization"))


Daemon = Annotated[NodeDaemon, Depends(get_daemon)]
