"""The console's HTTP answers: JSON that is never cached, and the session cookie."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from recluster.console.sessions import COOKIE


def json_answer(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


def set_session_cookie(response: Response, token: str) -> None:
    """The session cookie: for this origin only (`__Host-`, Path=/), never to scripts, never over
    plain HTTP, never on a cross-site request; gone when the browser closes."""
    response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="strict", path="/")


def drop_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
