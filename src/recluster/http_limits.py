"""Limits on what a client may send to recluster's HTTP servers: the node's REST API (9443) and
console (8443), and the service broker. One piece, used by all three.

| limit | value | where | answer |
|---|---|---|---|
| request body (small JSON documents) | `MAX_BODY_BYTES` = 1 MiB | `RequestLimits` (ASGI) | 413 |
| time to receive the body after the headers | `BODY_TIMEOUT_S` = 30 s | `RequestLimits` | 408, closed |
| request line + headers | `MAX_HEADER_BYTES` = 16 KiB | `HeaderTimeoutH11Protocol` | 431, closed |
| time to send the request line, headers | `HEADER_TIMEOUT_S` = 10 s | `HeaderTimeoutH11Protocol` | closed |
| idle keep-alive connection | `KEEP_ALIVE_S` = 5 s | uvicorn | closed |
| JSON nesting (bodies, JSON in headers) | `MAX_JSON_DEPTH` = 32 | `loads()` where the apps parse JSON | 400 |
| unpaired surrogates in JSON strings | refused | `loads()`; the REST API's models | 400 |

uvicorn alone has no bound on the time a client takes to send its headers (its keep-alive timer only
runs between requests), so a client sending a header byte now and then (slowloris) held a connection
and its buffers forever. On TLS ports the handshake comes first and is bounded by asyncio (60 s).

A body over the limit is read and thrown away (up to `DRAIN_BYTES` within `DRAIN_S`) before the 413
goes out, so the client, which is still sending, reads the answer instead of a reset connection
(nginx's "lingering close"); nothing is kept in memory. A client announcing an oversized body with
`Expect: 100-continue` gets the 413 at once and never sends it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_BODY_BYTES = 1024 * 1024
BODY_TIMEOUT_S = 30.0
MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_S = 10.0
MAX_JSON_DEPTH = 32

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


ERROR_CODES = {400: "bad_request", 408: "request_timeout", 413: "body_too_large"}


async def _answer(send: Send, status: int, message: str, close: bool) -> None:
    # both the REST API's error shape (error_code, message) and the broker's (description)
    error = {"error_code": ERROR_CODES[status], "message": message, "description": message}
    body = json.dumps(error).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class RequestLimits:
    """ASGI middleware: the request body is read here, at most `max_body_bytes` within `body_timeout_s`,
    and handed to the app in one message (FastAPI reads it whole anyway)."""

    def __init__(self, app: App, max_body_bytes: int = MAX_BODY_BYTES, body_timeout_s: float = BODY_TIMEOUT_S,
                 drain_bytes: int = DRAIN_BYTES, drain_s: float = DRAIN_S) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.drain_bytes = drain_bytes
        self.drain_s = drain_s

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared_raw = _header(scope, b"content-length")
        if declared_raw is not None:
            try:
                declared = int(declared_raw)
            except ValueError:
                declared = -1
            if declared < 0:
                await _answer(send, 400, "the Content-Length header is not a number", close=True)
                return
            if declared > self.max_body_bytes:
                expects = (_header(scope, b"expect") or b"").lower() == b"100-continue"
                drained = False if expects else await self._drain(receive, 0)
                await _answer(send, 413, self._too_large(), close=not drained)
                return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await _answer(send, 408, f"the request body did not arrive within {self.body_timeout_s:g} s",
                              close=True)
                return
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                chunks.clear()
                drained = not message.get("more_body") or await self._drain(receive, size)
                await _answer(send, 413, self._too_large(), close=not drained)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _drain(self, receive: Receive, already: int) -> bool:
        """Read and drop the rest of the body; True when it ended within the drain budget."""
        size = already
        try:
            async with asyncio.timeout(self.drain_s):
                while size <= self.drain_bytes:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return False
                    size += len(message.get("body", b""))
                    if not message.get("more_body"):
                        return True
        except TimeoutError:
            return False
        return False


def loads(raw: str | bytes) -> Any:
    """`json.loads`, with every refusal a ValueError, and two more refusals: nesting deeper than
    `MAX_JSON_DEPTH` (json.loads itself raises RecursionError, not ValueError, near the interpreter's
    recursion limit, which a 1 MiB body of brackets reaches; a little less deep still breaks
    json.dumps of the value later), and strings holding an unpaired UTF-16 surrogate ("\\ud800" is
    valid JSON text, but no UTF-8 encoder takes the string: httpx, sqlite and pydantic raise)."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from exc
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if isinstance(item, dict):
            for key in item:
                _check_text(key)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_JSON_DEPTH:
                    raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
                pending.append((child, depth + 1))
            elif isinstance(child, str):
                _check_text(child)
    return value


def _check_text(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("a JSON string holds an unpaired UTF-16 surrogate") from None


def json_problem(exc: ValueError) -> str:
    """What is wrong with a body `loads` refused, without quoting any of it (it may hold a password)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    text = str(exc)
    return text if text.startswith(("JSON nested deeper", "a JSON string holds")) else "it is not JSON"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as the server's own receive does

    return replay


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus: a client must send a request's line and headers within
    `header_timeout_s` of the connection (or of the first byte of its next request on a kept-alive
    connection), or the connection is closed; and they may take at most `max_header_bytes` (431).
    h11's own limit only counts what it buffers incomplete, so a large head that arrives in one read
    (up to 256 KiB) would pass it."""

    header_timeout_s = HEADER_TIMEOUT_S
    max_header_bytes = MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_tail = b""
        self._refused = False
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._discard(data)
            return
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None:
                self._arm()  # the next request on a kept-alive connection starts
            ended = b"\r\n\r\n" in self._head_tail + data
            if not self._head_fits(data):
                self._refuse_head(ended)
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # its headers are in
            self._head_bytes, self._head_tail = 0, b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_fits(self, data: bytes) -> bool:
        seen = self._head_tail + data
        end = seen.find(b"\r\n\r\n")
        if end >= 0:
            return self._head_bytes + end + 4 - len(self._head_tail) <= self.max_header_bytes
        self._head_bytes += len(data)
        self._head_tail = seen[-3:]
        return self._head_bytes <= self.max_header_bytes

    def _refuse_head(self, ended: bool) -> None:
        """431, then the rest of the head is read and dropped (at most `DRAIN_BYTES` within `DRAIN_S`)
        before the connection closes: closing on unread data would reset the connection, and the
        client, still sending, would not see the answer."""
        self._disarm()
        if self.transport.is_closing():
            return
        text = f"the request line and headers are larger than {self.max_header_bytes} bytes".encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                             b"content-length: " + str(len(text)).encode() + b"\r\n\r\n" + text)
        if ended:  # the whole head is in: nothing left to drain
            self.transport.close()
            return
        self._refused = True
        self._head_tail = b""
        self._header_timer = self.loop.call_later(DRAIN_S, self.transport.close)

    def _discard(self, data: bytes) -> None:
        seen = self._head_tail + data
        self._head_bytes += len(data)
        self._head_tail = seen[-3:]
        if b"\r\n\r\n" in seen or self._head_bytes > DRAIN_BYTES:
            self._disarm()
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection from %s: no complete request headers within %g s",
                             self.client[0] if self.client else "?", self.header_timeout_s)
            self.transport.close()


def uvicorn_limits() -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`/`uvicorn.run` that apply the connection limits."""
    return {"http": HeaderTimeoutH11Protocol, "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
            "timeout_keep_alive": KEEP_ALIVE_S}
