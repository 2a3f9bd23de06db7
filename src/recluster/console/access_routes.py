"""The console's users, roles and Redis ACLs calls, a database's roles_permissions, and "change my
password": each answered through the node's REST API with the session's credentials, so the REST
API's rules (and its 403 for a role that may not) are the console's. The pages learn the session's
management level from `GET /api/access` and hide what it would refuse.

Passwords go from the form to the REST API only: never into an answer, a log or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from recluster.console import access_views as av
from recluster.console.responses import drop_session_cookie
from recluster.console.responses import json_answer as _json
from recluster.console.sessions import Session
from recluster.http_limits import json_problem, loads

if TYPE_CHECKING:
    from recluster.console.app import Console

log = logging.getLogger(__name__)

Checked = Callable[[Request], Awaitable[Session | JSONResponse]]
Build = Callable[[dict[str, Any]], av.Checked]

USER_FIELDS = ("name", "email", "password", "role_uids")
ROLE_FIELDS = ("name", "management")
ACL_FIELDS = ("name", "acl")


async def level_of(console: Console, session: Session) -> tuple[str | None, Any]:
    """(the session's management level or None when not known, the users list when it may read it)."""
    status, body = await console.call(session, "GET", "/v1/users")
    if status == 200:
        return "admin", body
    return av.level_from_refusal(status, body), None


def credentials_refused(console: Console, request: Request, session: Session) -> Response:
    """The cluster refused the session's credentials (its password changed since the login)."""
    console.forget(session.sid)
    request.state.session_cookie = None
    answer = _json({"message": "the cluster refused the session's credentials", "login": True}, 401)
    drop_session_cookie(answer)
    return answer


def register(app: FastAPI, console: Console, checked: Checked) -> None:
    """Add the calls to the console app (`checked`: the request's session, or the refusal)."""

    async def read(session: Session, path: str) -> tuple[int, Any]:
        status, body = await console.call(session, "GET", path)
        return status, body if status == 200 else None

    @app.get("/api/access")
    async def access(request: Request) -> Response:
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return session
        try:
            level, users = await level_of(console, session)
            acl_status, acls = await read(session, "/v1/redis_acls")
            bdb_status, bdbs = await read(session, "/v1/bdbs")
            roles = (await read(session, "/v1/roles"))[1] if level == "admin" else None
        except httpx.HTTPError as exc:
            return _json({"message": f"the node's REST API does not answer ({type(exc).__name__})"}, 503)
        if 401 in (acl_status, bdb_status):
            return credentials_refused(console, request, session)
        if acls is None or bdbs is None:
            return _json({"message": av.refused_text(level, "reading the databases and Redis ACLs")}, 403)
        return _json({
            "can": av.capabilities(level),
            "users": av.user_rows(users, roles or []) if users is not None else None,
            "roles": av.role_rows(roles, bdbs, acls) if roles is not None else None,
            "redis_acls": av.acl_rows(acls),
            "permissions": av.permission_rows(bdbs, roles, acls),
            "refused": None if level == "admin" else av.refused_text(level, "managing users and roles"),
        })

    async def send(request: Request, method: str, path: str, build: Build | None,
                   fields: Sequence[str]) -> tuple[Session | None, int, Any, dict[str, Any], Response | None]:
        """Read the form, check what the console can, call the REST API. Returns the session, the
        REST answer, the body sent, or the answer to give at once."""
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return None, 0, None, {}, session
        body: dict[str, Any] = {}
        if build is not None:
            try:
                form = loads(await request.body())
            except ValueError as exc:
                return session, 0, None, {}, _json({"message": f"the form could not be read: the body is "
                                                               f"not valid JSON: {json_problem(exc)}",
                                                    "fields": {}}, 400)
            body, errors = build(form if isinstance(form, dict) else {})
            if errors:
                return session, 0, None, body, _json({"message": "please correct the marked fields",
                                                      "fields": errors}, 400)
        try:
            status, answer = await console.call(session, method, path, body if build is not None else None)
        except httpx.HTTPError as exc:
            return session, 0, None, body, _json(
                {"message": f"the node's REST API does not answer ({type(exc).__name__})", "fields": {}}, 503)
        if status == 401:
            return session, status, answer, body, credentials_refused(console, request, session)
        if status >= 400:
            return session, status, answer, body, _json(av.access_errors(status, answer, fields), status)
        return session, status, answer, body, None

    async def write(request: Request, method: str, path: str, build: Build | None,
                    fields: Sequence[str]) -> Response:
        _, _, answer, _, refused = await send(request, method, path, build, fields)
        if refused is not None:
            return refused
        console.invalidate()
        return _json(_public(answer))

    def resealed(request: Request, session: Session, password: str) -> bool:
        """Keep the session working after its own password changed: the same session, sealed with
        the new password (the middleware sends the cookie). False: the user must log in again."""
        try:
            request.state.session_cookie = console.tokens.with_password(session, password, console.clock())
        except ValueError:
            return False
        console.seen(session)
        return True

    @app.post("/api/users")
    async def create_user(request: Request) -> Response:
        return await write(request, "POST", "/v1/users", av.user_create_body, USER_FIELDS)

    @app.put("/api/users/{uid}")
    async def update_user(uid: int, request: Request) -> Response:
        return await write(request, "PUT", f"/v1/users/{uid}", av.user_update_body, USER_FIELDS)

    @app.put("/api/users/{uid}/password")
    async def set_user_password(uid: int, request: Request) -> Response:
        session, _, answer, body, refused = await send(request, "PUT", f"/v1/users/{uid}",
                                                       av.user_password_body, USER_FIELDS)
        if refused is not None or session is None:
            return refused or _json({"message": "not logged in", "login": True}, 401)
        if isinstance(answer, dict) and session.username in (answer.get("name"), answer.get("email")):
            resealed(request, session, body["password"])  # the admin set its own user's password
        return _json({"ok": True})

    @app.delete("/api/users/{uid}")
    async def delete_user(uid: int, request: Request) -> Response:
        return await write(request, "DELETE", f"/v1/users/{uid}", None, ())

    @app.post("/api/roles")
    async def create_role(request: Request) -> Response:
        return await write(request, "POST", "/v1/roles", av.role_body, ROLE_FIELDS)

    @app.delete("/api/roles/{uid}")
    async def delete_role(uid: int, request: Request) -> Response:
        return await write(request, "DELETE", f"/v1/roles/{uid}", None, ())

    @app.post("/api/redis_acls")
    async def create_acl(request: Request) -> Response:
        return await write(request, "POST", "/v1/redis_acls", lambda f: av.acl_body(f, True), ACL_FIELDS)

    @app.put("/api/redis_acls/{uid}")
    async def update_acl(uid: int, request: Request) -> Response:
        return await write(request, "PUT", f"/v1/redis_acls/{uid}", lambda f: av.acl_body(f, False),
                           ACL_FIELDS)

    @app.delete("/api/redis_acls/{uid}")
    async def delete_acl(uid: int, request: Request) -> Response:
        return await write(request, "DELETE", f"/v1/redis_acls/{uid}", None, ())

    @app.put("/api/bdbs/{uid}/permissions")
    async def set_permissions(uid: int, request: Request) -> Response:
        return await write(request, "PUT", f"/v1/bdbs/{uid}", av.permissions_body, ("roles_permissions",))

    @app.post("/api/password")
    async def change_own_password(request: Request) -> Response:
        session = await checked(request)
        if isinstance(session, JSONResponse):
            return session
        try:
            form = loads(await request.body())
        except ValueError as exc:
            return _json({"message": f"the form could not be read: {json_problem(exc)}", "fields": {}}, 400)
        body, errors = av.own_password_body(form if isinstance(form, dict) else {}, session.username)
        if errors:
            return _json({"message": "please correct the marked fields", "fields": errors}, 400)
        try:
            status, answer = await console.call(session, "PUT", "/v1/users/password", body)
        except httpx.HTTPError as exc:
            return _json({"message": f"the node's REST API does not answer ({type(exc).__name__})",
                          "fields": {}}, 503)
        if status == 401 and "old password" in str((answer or {}).get("message", "")):
            wrong = "the current password is wrong"
            return _json({"message": wrong, "fields": {"old_password": wrong}}, 400)
        if status == 401:
            return credentials_refused(console, request, session)
        if status >= 400:
            return _json(av.access_errors(status, answer, ("old_password", "new_password")), status)
        log.info("console: %s changed its password", session.username)
        if not resealed(request, session, body["new_password"]):
            return _json({"ok": True, "message": "the password is changed; log in again with it"})
        return _json({"ok": True, "message": "your password is changed; you stay logged in"})


def _public(answer: Any) -> dict[str, Any]:
    """What the page needs of a REST answer: the object's uid and name (a bdb's answer holds its
    password for members; a user's holds nothing secret, but the page needs no more)."""
    data = answer if isinstance(answer, dict) else {}
    return {"ok": True, "uid": data.get("uid"), "name": data.get("name")}
