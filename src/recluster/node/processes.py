"""Child processes (redis-server, redis-sentinel) started by the daemon and stopped by the pid it
recorded, never by name. A daemon restarted after SIGKILL finds its surviving children through their
pid files and checks /proc/<pid>/cmdline before adopting (a recycled pid is never signalled).

A child's output (stdout and stderr) goes through a pipe to one forwarding thread, which writes each
line to the daemon's stdout as `[<name>] <line>` (with `--log-format json`, a JSON log line whose
`process` is the name), so `kubectl logs` shows every process of the node and no file on the volume
grows. The child's end of the pipe is non-blocking: a child whose reader
falls behind (the daemon's stdout stuck) loses lines instead of stalling on a write.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from recluster.logs import json_line

log = logging.getLogger(__name__)

# The longest line forwarded, prefix included (a longer one is cut): a write of at most PIPE_BUF
# (4096) bytes to a pipe is atomic, so lines of two children never interleave on the daemon's stdout.
MAX_LINE = 4000
READ_SIZE = 65536
CUT = b" [...]"
# Secrets a child may print. redis-server and redis-sentinel show the line of their configuration file
# they refuse (`>>> 'requirepass "..."'`); Sentinel masks auth-pass in its own `+set` events, but not
# every version did.
ECHOED_SECRET = re.compile(
    rb"(?i)^(>>> ')\s*(requirepass|masterauth|masteruser|user|sentinel\s+auth-pass|sentinel\s+auth-user|"
    rb"sentinel\s+sentinel-pass|sentinel\s+sentinel-user|tls-key-file-pass|tls-client-key-file-pass)\b.*$")
AUTH_PASS = re.compile(rb"(?i)\b(auth-pass|sentinel-pass)(\s+)(?!\*+(\s|$)|<redacted>)\S+")


def redact(line: bytes) -> bytes:
    """`line` with any secret it shows replaced by `<redacted>` (pure)."""
    line = ECHOED_SECRET.sub(rb"\1\2 <redacted>'", line)
    return AUTH_PASS.sub(rb"\1\2<redacted>", line)


def write_stdout(data: bytes) -> None:
    """All of `data` to the daemon's stdout (fd 1), one write(2) for a line; dropped if it fails."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(1, view):]
    except OSError:
        pass  # no stdout (closed, a full non-blocking pipe): the line is lost, the child goes on


CHILD_LOGGER = "recluster.node.child"


def json_child_line(name: str, text: bytes) -> bytes:
    """A child's output line as a JSON log line (recluster.logs), at most MAX_LINE bytes with its
    newline: the text is cut further when escaping made it longer."""
    message = text.decode("utf-8", errors="replace")
    while True:
        line = (json_line(message, logger=CHILD_LOGGER, process=name) + "\n").encode()
        if len(line) <= MAX_LINE:
            return line
        over = len(line) - MAX_LINE
        message = message[: max(0, len(message) - max(over, len(CUT)) - len(CUT))] + CUT.decode()


class _Stream:
    """One child's pipe and the partial line read from it so far (never more than a line)."""

    def __init__(self, fd: int, name: str, json_lines: bool = False) -> None:
        self.fd = fd
        self.name = name
        self.json_lines = json_lines
        self.prefix = f"[{name}] ".encode(errors="replace")
        self.room = MAX_LINE - len(self.prefix) - 1  # the line's own bytes, before its newline
        self.partial = b""
        self.cutting = False  # a line too long was forwarded cut: the rest of it is dropped

    def lines(self, data: bytes) -> list[bytes]:
        """The complete lines that `data` ends, each ready to write."""
        out = []
        *complete, self.partial = (self.partial + data).split(b"\n")
        for text in complete:
            if not self.cutting:
                out.append(self.line(text))
            self.cutting = False
        if len(self.partial) > self.room:
            if not self.cutting:
                out.append(self.line(self.partial))
                self.cutting = True
            self.partial = b""
        return out

    def rest(self) -> list[bytes]:
        """At end of file: the last line, when it had no newline."""
        return [self.line(self.partial)] if self.partial and not self.cutting else []

    def line(self, text: bytes) -> bytes:
        text = redact(text.rstrip(b"\r"))
        if len(text) > self.room:
            text = text[: self.room - len(CUT)] + CUT
        if self.json_lines:
            return json_child_line(self.name, text)
        return self.prefix + text + b"\n"


class OutputForwarder:
    """One thread for every child's output: waits on all their pipes at once and writes their lines,
    prefixed with the child's name, through `sink` (the daemon's stdout). It never holds more than a
    line per child, and the event loop never waits on it."""

    def __init__(self, sink: Callable[[bytes], None] = write_stdout, json_lines: bool = False) -> None:
        self.sink = sink
        self.json_lines = json_lines  # JSON log lines (`--log-format json`) instead of `[name] line`
        self._lock = threading.Lock()
        self._added: list[_Stream] = []
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake: tuple[int, int] | None = None

    def add(self, fd: int, name: str) -> None:
        """Forward the lines read from `fd` (the forwarder owns it now and closes it at end of file)."""
        os.set_blocking(fd, False)
        with self._lock:
            if self._thread is None:
                self._selector = selectors.DefaultSelector()
                self._wake = os.pipe()
                os.set_blocking(self._wake[0], False)
                os.set_blocking(self._wake[1], False)
                self._selector.register(self._wake[0], selectors.EVENT_READ, None)
                self._thread = threading.Thread(target=self._run, name="child-output", daemon=True)
                self._thread.start()
            self._added.append(_Stream(fd, name, self.json_lines))
            wake = self._wake
        assert wake is not None
        with contextlib.suppress(BlockingIOError):  # a full wake-up pipe: a wake-up is pending anyway
            os.write(wake[1], b"x")

    def _run(self) -> None:
        selector, wake = self._selector, self._wake
        assert selector is not None and wake is not None
        while True:
            try:
                for key, _ in selector.select():
                    if key.data is None:
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake[0], 4096)
                        with self._lock:
                            added, self._added = self._added, []
                        for stream in added:
                            selector.register(stream.fd, selectors.EVENT_READ, stream)
                    else:
                        self._read(selector, key.data)
            except Exception:  # a bug here must not silence every child for the daemon's lifetime
                log.exception("forwarding the children's output")
                time.sleep(1.0)

    def _read(self, selector: selectors.BaseSelector, stream: _Stream) -> None:
        try:
            data = os.read(stream.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        lines = stream.lines(data) if data else stream.rest()
        for line in lines:
            self.sink(line)
        if not data:  # end of file: the child (and anything it started) is gone
            selector.unregister(stream.fd)
            os.close(stream.fd)


FORWARDER = OutputForwarder()


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not is_zombie(pid)


class ManagedProcess:
    """One child identified by a marker (its config file path) that appears in its command line.

    redis-server rewrites its process title; the config sets `proc-title-template` to include
    `{config-file}` so the marker stays visible."""

    def __init__(self, name: str, argv: list[str], pid_file: Path, marker: str, log_file: Path,
                 forwarder: OutputForwarder | None = None) -> None:
        self.name = name
        self.argv = argv
        self.pid_file = pid_file
        self.marker = marker
        # where earlier versions appended the child's output without bound: removed at the next start
        self.log_file = log_file
        self.forwarder = forwarder or FORWARDER  # the child's lines, as `[name] line`, on our stdout
        self._popen: subprocess.Popen[bytes] | None = None

    def recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        """The pid of the running child, if the recorded pid is alive and is ours."""
        if self._popen is not None:
            if self._popen.poll() is None:
                # our own child, not reaped: its pid cannot have been reused (asked every shard,
                # every tick: no /proc and pid-file reads for the common case)
                return self._popen.pid
            self._popen = None  # reaped
        pid = self.recorded_pid()
        if pid is None or not alive(pid):
            return None
        if self.marker not in cmdline(pid):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> int:
        existing = self.pid()
        if existing is not None:
            return existing
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self._forget_log_file()
        read_end, write_end = os.pipe()
        # the child's end never blocks: with the reader behind, its log lines are lost, not its time
        fcntl.fcntl(write_end, fcntl.F_SETFL, fcntl.fcntl(write_end, fcntl.F_GETFL) | os.O_NONBLOCK)
        try:
            # own session: a Ctrl-C meant for the daemon's terminal does not reach the children
            self._popen = subprocess.Popen(self.argv, stdout=write_end, stderr=write_end,
                                           stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.forwarder.add(read_end, self.name)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(str(self._popen.pid))
        tmp.replace(self.pid_file)
        log.info("started %s pid %d", self.name, self._popen.pid)
        return self._popen.pid

    def _forget_log_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            size = self.log_file.stat().st_size
            self.log_file.unlink()
            log.info("%s: removed %s (%d bytes), written by an earlier version; the output now goes to "
                     "the daemon's stdout", self.name, self.log_file, size)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; only the pid recorded and verified."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._still(pid):
                time.sleep(0.05)
            if self._still(pid):
                log.warning("%s pid %d did not stop in %.0fs after SIGTERM; sending SIGKILL",
                            self.name, pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5.0)
        self._popen = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def kill(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5.0)
        self._popen = None

    def _still(self, pid: int) -> bool:
        if self._popen is not None and self._popen.pid == pid:
            return self._popen.poll() is None
        return alive(pid)

    def _wait_gone(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._still(pid):
            time.sleep(0.02)


def signal_recorded(pid_file: Path, sig: int, marker: str | None = None) -> int | None:
    """Send `sig` to the process recorded in `pid_file` if it is alive (and its command line holds
    `marker`, when given); its pid, or None when nothing was signalled."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid) or (marker is not None and marker not in cmdline(pid)):
        return None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return None
    return pid


def kill_recorded(pid_file: Path, marker: str | None = None) -> bool:
    """SIGKILL the process recorded in `pid_file` if it is alive (and its command line holds
    `marker`, when given). Used by tests and the dev cluster to kill a node's children."""
    pid = signal_recorded(pid_file, signal.SIGKILL, marker)
    if pid is None:
        return False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.02)
    return True


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner (configs that hold passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
