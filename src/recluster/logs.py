"""How every part logs (node daemon, operator, services rigger, service broker): plain lines, or one
JSON object per line with `--log-format json` or RECLUSTER_LOG_FORMAT=json (what log collectors
parse without guessing). And the access log of the HTTP servers (REST API, console, broker).

A JSON line has `timestamp` (RFC 3339, UTC), `severity` (debug, info, warning, error, critical),
`logger`, `message`, `exception` when there is one, and the record's extra fields: `object` (the
Kubernetes object an operator line is about), `process` (a node child's output line), `http` (an
access log line).

The access log never holds a secret: no header is logged (Authorization, Cookie), no body, and no
query string (where a client may put a token); the path is logged with bytes outside printable
ASCII percent-encoded, so a request cannot forge a log line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

LOG_FORMAT_ENV = "RECLUSTER_LOG_FORMAT"
FORMATS = ("plain", "json")
PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "recluster.access"

# the attributes every LogRecord has: the rest are a call's `extra` fields
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# kopf's extras that are not about the line (its settings object, its event-posting switch)
_SKIPPED = {"settings", "k8s_skip"}


def log_format(chosen: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """`chosen` (a --log-format flag), else RECLUSTER_LOG_FORMAT, else plain."""
    value = (chosen or (os.environ if environ is None else environ).get(LOG_FORMAT_ENV) or "plain").lower()
    if value not in FORMATS:
        raise ValueError(f"log format {value!r}: use one of {', '.join(FORMATS)} ({LOG_FORMAT_ENV})")
    return value


def timestamp(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_line(message: str, *, logger: str, severity: str = "info", created: float | None = None,
              **fields: Any) -> str:
    """One JSON log line (no newline), as JsonFormatter writes them."""
    out = {"timestamp": timestamp(time.time() if created is None else created), "severity": severity,
           "logger": logger, "message": message, **fields}
    return json.dumps(out, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key in _STANDARD or key in _SKIPPED or key.startswith("_"):
                continue
            fields["object" if key == "k8s_ref" else key] = value
        return json_line(record.getMessage(), logger=record.name, severity=record.levelname.lower(),
                         created=record.created, **fields)


def configure_logging(level: str | int, fmt: str, quiet: Iterable[str] = ()) -> logging.Handler:
    """The root logger writes to stderr in `fmt` at `level` (its one handler, returned: a part may
    add a filter); the `quiet` loggers only from warnings on."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format(fmt) == "json" else logging.Formatter(PLAIN))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


# ---- the access log ---------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def loggable_path(raw: bytes) -> str:
    """The request's path as sent, bytes outside printable ASCII (and `%`, `"`, `\\`) percent-encoded."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b not in b'%"\\' else f"%{b:02X}" for b in raw)


class AccessLog:
    """ASGI middleware: one INFO line on `recluster.access` per HTTP request, once it is answered:
    the server's name, the client's address, method, path, status, response bytes and duration."""

    def __init__(self, app: App, server: str, logger: logging.Logger | None = None) -> None:
        self.app, self.server = app, server
        self.log = logger or logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        answer = {"status": 0, "bytes": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body") or b"")
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            answer["status"] = answer["status"] or 500  # what the server answers for the app
            raise
        finally:
            self._write(scope, answer["status"], answer["bytes"], time.monotonic() - started)

    def _write(self, scope: Scope, status: int, size: int, seconds: float) -> None:
        raw = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8", "replace")
        path = loggable_path(bytes(raw).partition(b"?")[0])
        method = loggable_path(str(scope.get("method", "")).encode("latin-1", "replace"))
        client = scope.get("client") or ("-", 0)
        fields = {"server": self.server, "client": str(client[0]), "method": method, "path": path,
                  "status": status, "bytes": size, "duration_ms": round(seconds * 1000, 1)}
        self.log.info("%s %s \"%s %s\" %d %d %.1fms", self.server, fields["client"], method, path, status,
                      size, fields["duration_ms"], extra={"http": fields})
