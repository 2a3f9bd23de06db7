"""The request limits shared by the REST API, the console and the broker (recluster.http_limits):
the body limit and body timeout of the ASGI middleware, driven with hand-made ASGI messages, and the
header timeout of the uvicorn protocol, on an in-process server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from recluster.http_limits import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    HeaderTimeoutH11Protocol,
    RequestLimits,
    json_problem,
    loads,
    uvicorn_limits,
)

pytestmark = pytest.mark.unit


class Recorder:
    """A tiny ASGI app: records the body it was given and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        message = await receive()
        self.bodies.append(message.get("body", b""))
        assert message.get("more_body") is False
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})


def scope(headers: Iterable[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}


async def run(middleware: RequestLimits, request_scope: dict[str, Any],
              chunks: list[bytes], delay_s: float = 0.0) -> tuple[int, dict[str, str], bytes, int]:
    """(status, headers, body, chunks the server read) for a body sent as `chunks`."""
    pending = list(chunks)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not pending:
            await asyncio.sleep(3600)  # after the body: only a disconnect would come
        if delay_s:
            await asyncio.sleep(delay_s)
        read += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(request_scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body, read


async def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    app = Recorder()
    status, _, _, _ = await run(RequestLimits(app, max_body_bytes=10), scope(), [b"12345", b"67890"])
    assert status == 200 and app.bodies == [b"1234567890"]


async def test_a_request_without_body_passes() -> None:
    app = Recorder()
    status, _, _, _ = await run(RequestLimits(app), scope(), [b""])
    assert status == 200 and app.bodies == [b""]


async def test_a_declared_oversized_body_is_refused_with_413_after_draining_it() -> None:
    app = Recorder()
    chunks = [b"x" * 64] * 4
    status, headers, body, read = await run(RequestLimits(app, max_body_bytes=100),
                                            scope([(b"content-length", b"256")]), chunks)
    assert status == 413 and app.calls == 0
    assert read == 4, "the body is read and dropped, so the client sees the answer"
    assert "connection" not in headers, "a drained connection can be kept"
    answer = json.loads(body)
    assert answer["error_code"] == "body_too_large" and "100 bytes" in answer["message"]
    assert answer["description"] == answer["message"]


async def test_expect_100_continue_gets_413_before_the_body_is_sent() -> None:
    app = Recorder()
    status, headers, _, read = await run(
        RequestLimits(app, max_body_bytes=100),
        scope([(b"content-length", b"1000000"), (b"expect", b"100-continue")]), [b"x" * 100])
    assert status == 413 and read == 0 and headers["connection"] == "close"


async def test_a_chunked_body_growing_over_the_limit_is_refused() -> None:
    app = Recorder()
    status, _, _, read = await run(RequestLimits(app, max_body_bytes=100), scope(), [b"x" * 60] * 5)
    assert status == 413 and app.calls == 0 and read == 5


async def test_a_body_longer_than_the_drain_budget_closes_the_connection() -> None:
    app = Recorder()
    status, headers, _, read = await run(RequestLimits(app, max_body_bytes=10, drain_bytes=100),
                                         scope(), [b"x" * 60] * 10)
    assert status == 413 and headers["connection"] == "close" and read < 10


@pytest.mark.parametrize("value", [b"lots", b"-1", b""])
async def test_a_bad_content_length_is_400(value: bytes) -> None:
    app = Recorder()
    status, headers, _, _ = await run(RequestLimits(app), scope([(b"content-length", value)]), [b""])
    assert status == 400 and headers["connection"] == "close" and app.calls == 0


async def test_a_body_that_comes_too_slowly_gets_408() -> None:
    app = Recorder()
    status, headers, body, _ = await run(RequestLimits(app, body_timeout_s=0.2), scope(), [b"a"] * 10,
                                         delay_s=0.05)
    assert status == 408 and headers["connection"] == "close" and app.calls == 0
    assert json.loads(body)["error_code"] == "request_timeout"


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await RequestLimits(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_the_limit_is_one_mebibyte_and_uvicorn_gets_the_protocol() -> None:
    assert MAX_BODY_BYTES == 1024 * 1024
    limits = uvicorn_limits()
    assert limits["http"] is HeaderTimeoutH11Protocol and limits["h11_max_incomplete_event_size"] == 16384


def test_loads_takes_json_up_to_the_depth_limit() -> None:
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads(nested) is not None
    assert loads(b'{"a": {"b": [1, {"c": null}]}, "n": 1e5}') == {"a": {"b": [1, {"c": None}]}, "n": 1e5}
    assert loads("3") == 3
    assert loads('"\\ud83d\\ude00 caf\\u00e9"') == "\U0001f600 café"  # a surrogate pair is fine


@pytest.mark.parametrize("text", [
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    '{"a": ' * 40 + "1" + "}" * 40,
    "[" * 200_000 + "]" * 200_000,  # json.loads raises RecursionError here
    "{not json", b"\xff\xfe", "1" * 5000,  # the last: over Python's 4300-digit int limit
    '"\\ud800"', '{"a": ["ok", "x\\udfffy"]}', '{"\\ud800": 1}',  # unpaired surrogates, escaped
])
def test_loads_refuses_with_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads(text)


@pytest.mark.parametrize(("text", "problem"), [
    ('{"password": "s3cret"', "Expecting ',' delimiter at line 1 column 22"),
    (b'{"password": "s3cr\xff"}', "it is not UTF-8"),
    ("[" * 40 + "]" * 40, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
    ('{"password": "\\ud800"}', "a JSON string holds an unpaired UTF-16 surrogate"),
])
def test_json_problem_names_the_problem_without_quoting_the_body(text: str | bytes, problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        loads(text)
    assert json_problem(refused.value) == problem


# ---- the header timeout, on a real socket --------------------------------------------------


async def serve(timeout_s: float) -> tuple[asyncio.Server, int]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, lifespan="off", log_level="error", **uvicorn_limits())
    config.load()
    state = ServerState()

    class Quick(HeaderTimeoutH11Protocol):
        header_timeout_s = timeout_s

    server = await asyncio.get_running_loop().create_server(
        lambda: Quick(config=config, server_state=state, app_state={}), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def closed_after(reader: asyncio.StreamReader, limit_s: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(limit_s):
        while await reader.read(1024):
            pass
    return loop.time() - start


async def test_a_client_that_sends_headers_slowly_is_cut_off() -> None:
    server, port = await serve(0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")

        async def dribble() -> None:
            for _ in range(40):
                await asyncio.sleep(0.1)
                writer.write(b"X")  # one header byte at a time, never the blank line
        task = asyncio.create_task(dribble())
        took = await closed_after(reader, 3.0)
        task.cancel()
        assert took < 1.5
        writer.close()
    finally:
        server.close()


async def test_a_silent_connection_is_cut_off_and_a_prompt_one_is_served() -> None:
    server, port = await serve(0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_after(reader, 3.0) < 1.5
        writer.close()
        # a normal request, then a second one on the same connection well after the timeout
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
            await asyncio.sleep(0.8)  # longer than the header timeout, shorter than keep-alive
        writer.close()
    finally:
        server.close()


async def test_the_next_request_on_a_kept_alive_connection_is_timed_too() -> None:
    server, port = await serve(0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        await reader.readexactly(2)
        writer.write(b"GET / HTTP/1.1\r\n")  # starts the next request and stalls
        assert await closed_after(reader, 3.0) < 1.5
        writer.close()
    finally:
        server.close()


@pytest.mark.parametrize("pieces", [1, 7])
async def test_headers_over_16_kib_are_refused_with_431(pieces: int) -> None:
    server, port = await serve(5.0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        step = len(head) // pieces + 1
        for i in range(0, len(head), step):  # in one write, or in pieces
            writer.write(head[i:i + step])
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(200), 3)
        assert answer.startswith(b"HTTP/1.1 431") and b"16384 bytes" in answer
        assert await closed_after(reader, 3.0) < 3.0
        writer.close()
    finally:
        server.close()


async def test_headers_just_under_the_limit_pass() -> None:
    server, port = await serve(5.0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
        writer.write(start + b"a" * (16384 - len(start) - 4) + b"\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(200), 3)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        writer.close()
    finally:
        server.close()
