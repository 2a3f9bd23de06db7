"""recluster.logs: the format every part logs in (plain or JSON lines), the access log of the HTTP
servers without secrets, and a node child's output line as JSON. (The node's and the broker's real
servers: tests/integration/node/test_access_log_lines.py, tests/integration/broker/.)"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest

from recluster.logs import (
    ACCESS_LOGGER,
    LOG_FORMAT_ENV,
    AccessLog,
    JsonFormatter,
    configure_logging,
    log_format,
    loggable_path,
)
from recluster.node.processes import MAX_LINE, OutputForwarder, _Stream, json_child_line

pytestmark = pytest.mark.unit


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("recluster.node.daemon", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_the_format_comes_from_the_flag_then_the_environment() -> None:
    assert log_format(None, {}) == "plain"
    assert log_format(None, {LOG_FORMAT_ENV: "JSON"}) == "json"
    assert log_format("plain", {LOG_FORMAT_ENV: "json"}) == "plain"
    with pytest.raises(ValueError, match="RECLUSTER_LOG_FORMAT"):
        log_format(None, {LOG_FORMAT_ENV: "xml"})


def test_a_json_line_has_the_fields_and_the_extras() -> None:
    line = JsonFormatter().format(record("node %s is %s", 2, "down", http={"status": 200},
                                         k8s_ref={"kind": "RedisEnterpriseCluster", "name": "rec"},
                                         settings=object(), k8s_skip=True))
    parsed = json.loads(line)
    assert parsed["severity"] == "warning" and parsed["logger"] == "recluster.node.daemon"
    assert parsed["message"] == "node 2 is down"
    assert parsed["timestamp"].endswith("Z") and "T" in parsed["timestamp"]
    assert parsed["http"] == {"status": 200}
    assert parsed["object"] == {"kind": "RedisEnterpriseCluster", "name": "rec"}  # kopf's reference
    assert "settings" not in parsed and "k8s_skip" not in parsed and "\n" not in line


def test_an_exception_stays_on_the_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        made = record("failed")
        made.exc_info = sys.exc_info()
    parsed = json.loads(JsonFormatter().format(made))
    assert "RuntimeError: boom" in parsed["exception"]


def test_configure_logging_writes_json_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info", "json", quiet=("noisy",))
        logging.getLogger("recluster.test").info("hello %s", "world")
        logging.getLogger("noisy").info("not shown")
        lines = capsys.readouterr().err.strip().splitlines()
        assert [json.loads(line)["message"] for line in lines] == ["hello world"]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.getLogger("noisy").setLevel(logging.NOTSET)


def test_paths_cannot_forge_a_line() -> None:
    assert loggable_path(b"/v1/bdbs/1") == "/v1/bdbs/1"
    assert loggable_path(b'/a\nb "c" %\x0c\xc2\xbe') == "/a%0Ab%20%22c%22%20%25%0C%C2%BE"


async def echo(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"set-cookie", b"s=cookie-secret")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_an_access_line_holds_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    app = AccessLog(echo, "api")
    basic = "Basic " + base64.b64encode(b"admin@example.com:pass-secret").decode()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://node") as http:
        answer = await http.get("/v1/bdbs/1?token=query-secret", headers={"Authorization": basic,
                                                                          "Cookie": "s=cookie-secret"})
    assert answer.status_code == 200
    (line,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    text = line.getMessage()
    took = line.__dict__["http"]["duration_ms"]
    assert text == f'api 127.0.0.1 "GET /v1/bdbs/1" 200 5 {took:.1f}ms'
    as_json = JsonFormatter().format(line)
    assert json.loads(as_json)["http"] | {"duration_ms": 0} == {
        "server": "api", "client": "127.0.0.1", "method": "GET", "path": "/v1/bdbs/1", "status": 200,
        "bytes": 5, "duration_ms": 0}
    for secret in ("pass-secret", basic.split()[1], "query-secret", "cookie-secret", "admin@example.com"):
        assert secret not in text and secret not in as_json


async def test_a_failing_app_is_logged_as_a_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("bug")

    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with pytest.raises(RuntimeError):
        await AccessLog(broken, "broker")({"type": "http", "method": "PUT", "raw_path": b"/v2/x",
                                           "client": ("10.0.0.9", 1)}, None, None)  # type: ignore[arg-type]
    (line,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert '"PUT /v2/x" 500' in line.getMessage()


async def test_lifespan_passes_through() -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await AccessLog(app, "api")({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_a_child_line_as_json_is_named_and_fits_one_write() -> None:
    parsed = json.loads(json_child_line("shard of bdb 3", b"Ready to accept connections tcp"))
    assert parsed["process"] == "shard of bdb 3" and parsed["logger"] == "recluster.node.child"
    assert parsed["message"] == "Ready to accept connections tcp"
    escaped = json_child_line("ccs", b"\x01" * 3990)  # each byte becomes \u0001: six times longer
    assert len(escaped) <= MAX_LINE and escaped.endswith(b"\n")
    assert json.loads(escaped)["message"].endswith(" [...]")


def test_the_forwarder_writes_json_lines_redacted() -> None:
    written: list[bytes] = []
    stream = _Stream(0, "sentinel", json_lines=True)
    lines = stream.lines(b">>> 'sentinel auth-pass mymaster s3cret'\nsecond\n")
    written.extend(lines)
    assert [json.loads(line)["message"] for line in written] == [
        ">>> 'sentinel auth-pass <redacted>'", "second"]
    assert OutputForwarder(json_lines=True).json_lines
