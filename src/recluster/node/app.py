"""The REST API (FastAPI): routers, authentication, error bodies, and forwarding of writes to the
leader. A console router can be mounted on the same app later (`create_app(..., extra_routers=)`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from recluster import __version__
from recluster.http_limits import App, Receive, RequestLimits, Scope, Send
from recluster.node.daemon import NodeDaemon
from recluster.node.deps import authenticated, check_credentials
from recluster.node.errors import ApiError, from_problems
from recluster.node.routers import (
    access,
    actions,
    backups,
    bdbs,
    bootstrap,
    cluster,
    health,
    internal,
    nodes,
    shards,
    stats,
)

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
FORWARD_HEADERS = ("authorization", "content-type", "accept")
FORWARDED_BY = "x-recluster-forwarded-by"


def _error(exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="recluster"'} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def create_app(daemon: NodeDaemon, handoff_timeout: float = 30.0,
               extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await daemon.start()
        try:
            yield
        finally:
            await daemon.stop(handoff_timeout)

    app = FastAPI(title="recluster node REST API", version=__version__, lifespan=lifespan,
                  openapi_url="/v1/openapi.json", docs_url="/v1/docs", redoc_url=None)
    app.state.daemon = daemon

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = list(exc.errors())
        for problem in problems:
            loc = list(problem.get("loc", ()))
            if loc and loc[0] in ("body", "path", "query"):
                source = loc.pop(0)
                if not loc:
                    loc = ["body"] if source == "body" else [source]
            problem["loc"] = tuple(loc)
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            return _error(ApiError(400, "invalid_json", "the body is not valid JSON", "body"))
        if first.get("type") == "model_attributes_type" or (first.get("loc") == ("body",)
                                                             and first.get("type") != "missing"):
            return _error(ApiError(400, "invalid_schema", "the body must be a JSON object", "body"))
        if first.get("loc") == ("body",) and first.get("type") == "missing":
            return _error(ApiError(400, "missing_body", "this call needs a JSON body", "body"))
        return _error(from_problems([dict(p) for p in problems]))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(ApiError(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(ApiError(500, "internal_error", f"unexpected {type(exc).__name__}; see the node's log"))

    routers = (health.router, bootstrap.router, internal.router, stats.router, bdbs.router, backups.router,
               shards.router, nodes.router, actions.router, cluster.router, access.router, *extra_routers)
    for router in routers:
        app.include_router(router)
    app.add_middleware(ForwardWrites, daemon=daemon)
    app.add_middleware(RequestLimits)  # outermost of ours: bounds the body before anything reads it
    app.openapi = lambda: _document(app, routers)  # type: ignore[method-assign]
    return app


def _document(app: FastAPI, routers: Sequence[APIRouter]) -> dict[str, Any]:
    """FastAPI's OpenAPI document, made true to what the API answers: no 422 (bad input is a 400
    with the API's error body, see `request_invalid`), and Basic auth declared where it is checked
    (on GET /v1/bootstrap only once the node is a member)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    secured = {(method.lower(), getattr(route, "path", "")) for router in routers
               if any(d.dependency is authenticated for d in router.dependencies)
               for route in router.routes for method in getattr(route, "methods", ())}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            operation.get("responses", {}).pop("422", None)
            if (method, path) in secured:
                operation["security"] = [{"basic": []}]
            elif (method, path) == ("get", "/v1/bootstrap"):
                operation["security"] = [{}, {"basic": []}]
    components = document.setdefault("components", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    components["securitySchemes"] = {"basic": {"type": "http", "scheme": "basic",
                                               "description": "the cluster's admin credentials"}}
    app.openapi_schema = document
    return document


class ForwardWrites:
    """A node that is not the leader forwards writes to it; the leader runs them. Plain ASGI so that
    a read passes straight through: Starlette's `@app.middleware` ran every request, reads included,
    in a task of its own behind memory streams, a few event-loop turns each, which is where a read
    waited while the node's loops had the loop (GET /v1/bdbs/<uid> p99)."""

    def __init__(self, app: App, daemon: NodeDaemon) -> None:
        self.app = app
        self.daemon = daemon

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        daemon = self.daemon
        path: str = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] not in WRITE_METHODS or not path.startswith("/v1/")
                or path.startswith("/v1/bootstrap") or not daemon.bootstrapped or await daemon.is_leader()):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            await check_credentials(daemon, request.headers.get("authorization"))
            if request.headers.get(FORWARDED_BY):
                # forwarded to a node that is no longer the leader: do not bounce it further
                raise ApiError(503, "leader_changing", "the cluster's leader is changing; retry")
            response = await _forward(daemon, request)
        except ApiError as exc:
            response = _error(exc)
        await response(scope, receive, send)


# A leader that does not accept the connection in time (a busy node on a loaded machine, a name that
# resolved slowly, a leader change under way) is asked again: nothing reached it, so repeating a write
# is safe. A request that did reach it is never repeated.
LEADER_CONNECT_ATTEMPTS = 3
LEADER_RETRY_DELAY_S = 0.5


async def _forward(daemon: NodeDaemon, request: Request) -> Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD_HEADERS}
    headers[FORWARDED_BY] = daemon.cfg.node_name
    # the path as the client sent it, still percent-encoded: decoded, a control character in a path
    # parameter made an invalid URL (a 500 instead of the leader's 400/404)
    raw = request.scope.get("raw_path") or request.url.path.encode()
    target = raw.decode("latin-1") + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body()
    for attempt in range(1, LEADER_CONNECT_ATTEMPTS + 1):
        leader = await daemon.leader_url()
        if leader is None:
            raise ApiError(503, "cluster_no_quorum", "this node does not know the cluster's leader; the "
                           "cluster may have lost its majority; nothing was changed")
        try:
            answer = await daemon.forward(request.method, leader + target, body, headers)
            break
        except httpx.InvalidURL as exc:
            raise ApiError(400, "invalid_parameter", "the request's path is not a valid URL path") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            if attempt == LEADER_CONNECT_ATTEMPTS:
                raise ApiError(503, "cluster_no_quorum",
                               f"the cluster's leader ({leader.split('//')[1]}) does not answer "
                               f"({type(exc).__name__}, {attempt} attempts); the cluster may have lost "
                               "its majority; nothing was changed") from exc
            log.info("the leader %s did not accept a connection (%s, attempt %d of %d); asking again",
                     leader.split("//")[1], type(exc).__name__, attempt, LEADER_CONNECT_ATTEMPTS)
            await asyncio.sleep(LEADER_RETRY_DELAY_S)
        except httpx.HTTPError as exc:
            # it reached the leader: whether it was applied is unknown, so it is not repeated
            raise ApiError(504, "leader_no_response",
                           f"the cluster's leader ({leader.split('//')[1]}) took the request but did not "
                           f"answer ({type(exc).__name__}); it may have been applied: read the state "
                           "before repeating it") from exc
    return Response(answer.content, status_code=answer.status_code,
                    media_type=answer.headers.get("content-type", "application/json"))

