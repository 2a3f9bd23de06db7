"""Request dependencies: the daemon, and Basic authentication against the cluster's credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from recluster.http_auth import parse_basic
from recluster.node.access import may_call
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


async def check_credentials(daemon: NodeDaemon, header: str | None) -> str:
    """The caller's management level (see recluster.node.access); 401 for wrong credentials."""
    creds = parse_basic(header)
    if creds is None:
        raise Unauthorized("this call needs HTTP Basic credentials of the cluster")
    state = await daemon.recent_state()
    level = await daemon.credentials.management(creds[0], creds[1], state)
    if level is None:
        # the state this node read last may be a tick old: a password changed just now (a rotation,
        # a new user) is checked against the current one before the caller is refused
        fresh = await daemon.state()
        if fresh is not state:
            level = await daemon.credentials.management(creds[0], creds[1], fresh)
    if level is None:
        raise Unauthorized("wrong username or password")
    return level


async def authenticated(request: Request) -> None:
    """The credentials are the admin's or a user's whose roles allow this call (403 otherwise);
    the level is kept in `request.state.management` for the views."""
    level = await check_credentials(await get_daemon(request), request.headers.get("authorization"))
    if not may_call(level, request.method, request.url.path):
        raise ApiError(403, "insufficient_permissions",
                       f"the user's role ({level}) does not allow {request.method} {request.url.path}")
    request.state.management = level


async def management(request: Request) -> str:
    """The caller's management level, set by `authenticated` (async: see `get_daemon`)."""
    return str(getattr(request.state, "management", "none"))


Level = Annotated[str, Depends(management)]


Daemon = Annotated[NodeDaemon, Depends(get_daemon)]
