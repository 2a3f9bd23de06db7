"""A child's output reaches the daemon's stdout, line by line and named: a real redis-server started
through ManagedProcess (as the CCS, the sentinel and the shards are), read back from fd 1 as captured
by pytest. No file on the volume grows; a bad configuration line holding a password is shown
redacted; a child whose reader is stuck does not wait on it."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from recluster.node.processes import ManagedProcess, OutputForwarder

pytestmark = pytest.mark.integration

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def shard(tmp_path: Path, config: str, name: str = "shard of bdb 3") -> ManagedProcess:
    conf = tmp_path / "redis.conf"
    conf.write_text(config)
    return ManagedProcess(name, [REDIS_SERVER, str(conf)], tmp_path / "redis.pid", str(conf),
                          tmp_path / "redis.log")


def wait_for(read: object, what: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen += read()  # type: ignore[operator]
        if what in seen:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{what!r} not in the output after {timeout_s:.0f}s:\n{seen[-3000:]}")


def test_redis_server_startup_line_reaches_stdout_named(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "redis.log").write_bytes(b"an earlier version's output\n" * 1000)
    host = "127.0.0.1"
    process = shard(tmp_path, f"bind {host}\nport {free_port(host)}\ndaemonize no\nsave \"\"\n"
                              f"dir {tmp_path}\nproc-title-template \"{{title}} {{config-file}}\"\n")
    try:
        process.start()
        out = wait_for(lambda: capfd.readouterr().out, "Ready to accept connections")
    finally:
        process.stop()
    ready = [line for line in out.splitlines() if "Ready to accept connections" in line]
    assert ready and all(line.startswith("[shard of bdb 3] ") for line in ready), out[-2000:]
    assert all(line.startswith("[shard of bdb 3] ") for line in out.splitlines() if line), out[-2000:]
    assert not (tmp_path / "redis.log").exists(), "the unbounded log file of earlier versions is gone"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redis.conf"], "no other file written"


def test_a_refused_config_line_is_shown_without_its_password(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    secret = "a-db-pass" + os.urandom(6).hex()
    process = shard(tmp_path, f'port 0\nrequirepass "{secret}" "one-argument-too-many"\n', name="ccs")
    process.start()
    out = wait_for(lambda: capfd.readouterr().out, "wrong number of arguments")
    process.stop()
    assert "[ccs] *** FATAL CONFIG FILE ERROR" in out, out
    assert "[ccs] >>> 'requirepass <redacted>'" in out, out
    assert secret not in out


def test_a_child_never_waits_for_a_stuck_reader(tmp_path: Path) -> None:
    """The forwarder's sink blocks (as a stdout no one reads would): the child still writes 4 MiB of
    output and exits at once, its lines dropped instead of its time; the forwarder then goes on."""
    unblock = threading.Event()
    lines: list[bytes] = []

    def stuck_sink(line: bytes) -> None:
        unblock.wait(30)
        lines.append(line)

    marker = str(tmp_path / "chatty")
    script = "import os,sys\nfor _ in range(4096):\n    try: os.write(1, b'x' * 1023 + b'\\n')\n" \
             "    except BlockingIOError: pass\n"
    process = ManagedProcess("chatty", ["python3", "-c", script, marker], tmp_path / "chatty.pid", marker,
                             tmp_path / "chatty.log", forwarder=OutputForwarder(stuck_sink))
    started = time.monotonic()
    process.start()
    assert process._popen is not None
    assert process._popen.wait(timeout=20) == 0
    assert time.monotonic() - started < 20
    unblock.set()
    deadline = time.monotonic() + 10
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines and all(line == b"[chatty] " + b"x" * 1023 + b"\n" for line in lines)
    assert len(lines) < 4096, "the pipe held everything: the test proves nothing"
