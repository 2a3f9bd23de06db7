"""The console's web app: login/logout, one JSON snapshot the page polls for live updates, and the
database create/edit/delete calls, all answered through the node's own REST API with the session's
credentials (so validation, forwarding to the leader and error messages are the API's own).

Pages are static files (`static/`): plain HTML, CSS and JavaScript, no framework, no CDN.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from recluster.api.ports import METRICS_PORT
from recluster.console import access_routes, views
from recluster.console.access_views import capabilities
from recluster.console.history import EventLog, StatsHistory
from recluster.console.responses import drop_session_cookie, set_session_cookie
from recluster.console.responses import json_answer as _json
from recluster.console.sessions import (
    COOKIE,
    IDLE_S,
    LoginThrottle,
    NoSessionKey,
    RevocationUnavailable,
    Session,
    SessionTokens,
    csrf_ok,
    same_origin,
)
from recluster.http_limits import RequestLimits, json_problem, loads

log = logging.getLogger(__name__)

STATIC = resources.files("recluster.console") / "static"
CHART_WINDOW_S = 300.0
SNAPSHOT_CACHE_S = 1.0
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


METRICS_TIMEOUT = httpx.Timeout(1.5, connect=1.0)


def default_metrics_url(node: dict[str, Any]) -> str:
    """A node's metrics endpoint: HTTPS with the node's certificate, which carries its name."""
    return f"https://{node['name']}:{node.get('ports', {}).get('metrics', METRICS_PORT)}/metrics"


class ApiUnavailable(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body = status, body


class Console:
    """The state behind the pages: sessions, the stats history, the event log, the last snapshot."""

    def __init__(self, api: httpx.AsyncClient, metrics: Callable[[dict[str, Any]], str] | None = None,
                 clock: Callable[[], float] = time.time,
                 metrics_http: httpx.AsyncClient | None = None, sample_every_s: float | None = None,
                 tokens: SessionTokens | None = None) -> None:
        self.api = api
        self.metrics_url = metrics or default_metrics_url
        self.clock = clock
        self.tokens = tokens or SessionTokens.local(clock)
        self._active: tuple[Session, float] | None = None  # the session of the last request, and when
        self.throttle = LoginThrottle()
        self.history = StatsHistory(size=200, every_s=1.5)
        self.sample_every_s = sample_every_s
        self._sampler: asyncio.Task[None] | None = None
        self.events = EventLog()
        self._digest: dict[str, str] | None = None
        self._snapshot: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._metrics_http = metrics_http or httpx.AsyncClient(timeout=METRICS_TIMEOUT)

    async def call(self, session: Session, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        response = await self.api.request(method, path, json=json, auth=(session.username, session.password))
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = {"message": response.text[:300]}
        return response.status_code, body

    async def _get(self, session: Session, path: str) -> Any:
        status, body = await self.call(session, "GET", path)
        if status >= 400:
            raise ApiUnavailable(status, body)
        return body

    async def _node_metrics(self, node: dict[str, Any]) -> dict[str, float]:
        if node.get("status") == "down":
            return {}
        try:
            response = await self._metrics_http.get(self.metrics_url(node))
            return views.node_metrics_from_text(response.text) if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}

    async def _bdb_stats(self, session: Session, bdb: dict[str, Any]) -> dict[str, float] | None:
        if bdb.get("status") not in ("active", "active-change-pending"):
            return None
        status, body = await self.call(session, "GET", f"/v1/bdbs/stats/last/{bdb['uid']}")
        if status != 200 or not isinstance(body, dict):
            return None
        values = body.get(str(bdb["uid"]))
        return {k: float(v) for k, v in values.items() if isinstance(v, int | float)} if values else None

    async def snapshot(self, session: Session) -> dict[str, Any]:
        async with self._lock:
            now = self.clock()
            if self._snapshot is not None and now - self._snapshot[0] < SNAPSHOT_CACHE_S:
                return self._snapshot[1]
            cluster, nodes, bdbs, shards, actions = await asyncio.gather(
                self._get(session, "/v1/cluster"), self._get(session, "/v1/nodes"),
                self._get(session, "/v1/bdbs"), self._get(session, "/v1/shards"),
                self._get(session, "/v1/actions"))
            metric_values, stat_values = await asyncio.gather(
                asyncio.gather(*(self._node_metrics(n) for n in nodes)),
                asyncio.gather(*(self._bdb_stats(session, b) for b in bdbs)))
            metrics = {int(n["uid"]): m for n, m in zip(nodes, metric_values, strict=True)}
            stats = {int(b["uid"]): s for b, s in zip(bdbs, stat_values, strict=True) if s is not None}
            now = self.clock()
            for uid, s in stats.items():
                self.history.add(uid, now, s.get("used_memory", 0.0), s.get("instantaneous_ops_per_sec", 0.0))
            self.history.keep_only(int(b["uid"]) for b in bdbs)
            leader = cluster.get("master_node")
            node_rows = views.node_rows(nodes, shards, bdbs, metrics, int(leader) if leader else None)
            bdb_rows = views.bdb_rows(bdbs, shards, nodes, stats)
            for row in bdb_rows:
                row["charts"] = [
                    views.chart(self.history.memory(row["uid"]), now, CHART_WINDOW_S, "Memory used", "bytes"),
                    views.chart(self.history.ops(row["uid"]), now, CHART_WINDOW_S, "Operations per second",
                                "ops"),
                ]
            digest = views.digest(node_rows, bdb_rows)
            when = time.strftime("%H:%M:%S", time.gmtime(now))
            self.events.add(when, views.diff_events(self._digest, digest))
            self._digest = digest
            result = {"overview": views.overview(cluster, node_rows, bdb_rows, actions, self.events.recent()),
                      "nodes": node_rows, "bdbs": bdb_rows, "time": now}
            self._snapshot = (now, result)
            return result

    def seen(self, session: Session) -> None:
        """A request of `session` came to this node: the sampler may use its credentials."""
        self._active = (session, self.clock())

    def forget(self, sid: str) -> None:
        if self._active is not None and self._active[0].sid == sid:
            self._active = None

    async def _sampling_session(self) -> Session | None:
        """The session of this node's last request, while it is live (not idle, not logged out on any
        node); None stops the sampler until the next request."""
        if self._active is None or self.clock() - self._active[1] > IDLE_S:
            self._active = None
            return None
        session = self._active[0]
        try:
            if await self.tokens.revocations.revoked(session.sid):
                self.forget(session.sid)
                return None
        except RevocationUnavailable:
            return None
        return session

    def ensure_sampler(self) -> None:
        """Keep sampling (charts, events) every `sample_every_s` while someone logged in uses this
        node's console, so a database page opened later shows the minutes before it too."""
        if self.sample_every_s and (self._sampler is None or self._sampler.done()):
            self._sampler = asyncio.create_task(self._sample_loop(self.sample_every_s))

    async def _sample_loop(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            session = await self._sampling_session()
            if session is None:
                return  # starts again at the next request of a session
            try:
                await self.snapshot(session)
            except Exception as exc:  # the page reports errors; the sampler only tries again
                log.debug("console sampler: %s", type(exc).__name__)

    def invalidate(self) -> None:
        self._snapshot = None


def _page(name: str) -> FileResponse:
    return FileResponse(str(STATIC / name), media_type="text/html",
                        headers={"cache-control": "no-store"})


def create_console_app(api: httpx.AsyncClient, metrics: Callable[[dict[str, Any]], str] | None = None,
                       metrics_http: httpx.AsyncClient | None = None,
                       sample_every_s: float | None = None, tokens: SessionTokens | None = None) -> FastAPI:
    """`api`: an HTTP client whose base URL is the node's REST API (in the node: an in-process ASGI
    transport to the API app); `metrics_http`: the client that reads the nodes' metrics endpoints
    (in the node: one that checks their certificates as the node checks its peers', server.py);
    `sample_every_s`: sample in the background while someone is logged in (None: only when polled);
    `tokens`: the sessions (in the node: valid on every node of its cluster, server.py; None: valid
    in this process only)."""
    console = Console(api, metrics, metrics_http=metrics_http, sample_every_s=sample_every_s, tokens=tokens)
    app = FastAPI(title="recluster console", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.console = console
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        if request.method in ("POST", "PUT", "DELETE", "PATCH") and not same_origin(
                request.headers.get("origin"), request.headers.get("host")):
            return _json({"message": "cross-origin request refused"}, 403)
        response: Response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        refreshed = getattr(request.state, "session_cookie", None)
        if refreshed:  # an active session's cookie, its idle clock started again
            set_session_cookie(response, refreshed)
        return response

    async def session_of(request: Request) -> Session | None:
        """The request's live session (RevocationUnavailable: the cluster's logouts cannot be read)."""
        session = await console.tokens.verify(request.cookies.get(COOKIE), console.clock())
        if session is not None:
            console.seen(session)
            console.ensure_sampler()
            request.state.session_cookie = console.tokens.refreshed(session, console.clock())
        return session

    async def checked(request: Request) -> Session | JSONResponse:
        try:
            session = await session_of(request)
        except RevocationUnavailable as exc:
            return _json({"message": f"the session cannot be checked now: {exc}"}, 503)
        if session is None:
            return _json({"message": "not logged in", "login": True}, 401)
        if request.method != "GET" and not csrf_ok(session, request.headers.get("x-csrf-token")):
            return _json({"message": "missing or wrong CSRF token; reload the page"}, 403)
        return session

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        try:
            if await session_of(request) is None:
                return RedirectResponse("/login", status_code=303)
        except RevocationUnavailable:
            pass  # the page shows what /api/session answers
        return _page("index.html")

    @app.get("/login", include_in_schema=False)
    async def login_page() -> Response:
        return _page("login.html")

    @app.post("/login")
    async def login(request: Request) -> Response:
        try:
            form = loads(await request.body())
        except ValueError as exc:
            return _json({"message": f"the request body is not valid JSON: {json_problem(exc)}"}, 400)
        try:
            username, password = str(form["username"]), str(form["password"])
        except (KeyError, TypeError):
            return _json({"message": "send a username and a password"}, 400)
        if not username or not password:
            return _json({"message": "enter the cluster's username and password"}, 400)
        client = request.client.host if request.client else "?"
        wait = console.throttle.wait_s(client, console.clock())
        if wait > 0:
            return _json({"message": f"too many wrong logins; try again in {wait:.0f} s"}, 429)
        try:
            response = await api.get("/v1/cluster", auth=(username, password))
        except httpx.HTTPError as exc:
            return _json({"message": f"the node's REST API does not answer ({type(exc).__name__})"}, 503)
        if response.status_code == 401:
            console.throttle.failed(client, console.clock())
            log.info("console: a login was refused (wrong username or password)")
            return _json({"message": "wrong username or password"}, 401)
        if response.status_code == 403:  # a role of management level `none`: databases only
            return _json({"message": "this user's role does not give access to the console"}, 403)
        if response.status_code != 200:
            body = response.json() if response.content else {}
            return _json({"message": f"cannot log in: {body.get('message', response.status_code)}"}, 503)
        console.throttle.succeeded(client)
        try:
            token, session = console.tokens.issue(username, password, console.clock())
        except NoSessionKey as exc:
            return _json({"message": f"cannot log in: {exc}"}, 503)
        except ValueError as exc:
            return _json({"message": f"cannot log in: {exc}"}, 400)
        console.seen(session)
        console.ensure_sampler()
        answer = _json({"ok": True})
        set_session_cookie(answer, token)
        log.info("console: %s logged in", username)
        return answer

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return session
        request.state.session_cookie = None
        try:
            await console.tokens.end(session)
        except RevocationUnavailable as exc:
            log.warning("console: the logout of %s could not be recorded: %s", session.username, exc)
            return _json({"message": f"the cluster could not record the logout ({exc}); the session stays "
                                     f"valid until it expires: try again"}, 503)
        console.forget(session.sid)
        log.info("console: %s logged out", session.username)
        answer = _json({"ok": True})
        drop_session_cookie(answer)
        return answer

    @app.get("/api/session")
    async def whoami(request: Request) -> Response:
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return session
        try:
            level, _ = await access_routes.level_of(console, session)
        except httpx.HTTPError:
            level = None  # the pages offer what the REST API may refuse; it answers when it can
        return _json({"username": session.username, "csrf": session.csrf, "can": capabilities(level)})

    @app.get("/api/snapshot")
    async def snapshot(request: Request) -> Response:
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return session
        try:
            return _json(await console.snapshot(session))
        except ApiUnavailable as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            if exc.status == 401:  # the credentials changed since the login
                return access_routes.credentials_refused(console, request, session)
            reason = body.get("message", exc.status)
            return _json({"message": f"cannot read the cluster's state: {reason}"}, 503)
        except httpx.HTTPError as exc:
            return _json({"message": f"the node's REST API does not answer ({type(exc).__name__})"}, 503)

    async def write(request: Request, method: str, path: str, creating: bool | None) -> Response:
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return session
        body: dict[str, Any] | None = None
        if creating is not None:
            try:
                form = loads(await request.body())
            except ValueError as exc:
                return _json({"message": f"the form could not be read: the body is not valid JSON: "
                                         f"{json_problem(exc)}", "fields": {}}, 400)
            body, errors = views.bdb_body_from_form(form if isinstance(form, dict) else {}, creating)
            if errors:
                return _json({"message": "please correct the marked fields", "fields": errors}, 400)
        try:
            status, answer = await console.call(session, method, path, body)
        except httpx.HTTPError as exc:
            return _json({"message": f"the node's REST API does not answer ({type(exc).__name__})",
                          "fields": {}}, 503)
        console.invalidate()
        if status >= 400:
            return _json(views.form_errors(status, answer), status)
        return _json(answer)

    @app.post("/api/bdbs")
    async def create_bdb(request: Request) -> Response:
        return await write(request, "POST", "/v1/bdbs", True)

    @app.put("/api/bdbs/{uid}")
    async def update_bdb(uid: int, request: Request) -> Response:
        return await write(request, "PUT", f"/v1/bdbs/{uid}", False)

    @app.delete("/api/bdbs/{uid}")
    async def delete_bdb(uid: int, request: Request) -> Response:
        return await write(request, "DELETE", f"/v1/bdbs/{uid}", None)

    access_routes.register(app, console, checked)
    app.add_middleware(RequestLimits)  # outermost of ours: bounds the body before anything reads it
    return app
