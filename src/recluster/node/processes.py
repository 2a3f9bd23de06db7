"""Child processes (redis-server, redis-sentinel) started by the daemon and stopped by the pid it
recorded, never by name. A daemon restarted after SIGKILL finds its surviving children through their
pid files and checks /proc/<pid>/cmdline before adopting (a recycled pid is never signalled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


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

    def __init__(self, name: str, argv: list[str], pid_file: Path, marker: str, log_file: Path) -> None:
        self.name = name
        self.argv = argv
        self.pid_file = pid_file
        self.marker = marker
        self.log_file = log_file
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
        with open(self.log_file, "ab") as out:
            # own session: a Ctrl-C meant for the daemon's terminal does not reach the children
            self._popen = subprocess.Popen(self.argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                           start_new_session=True, close_fds=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(str(self._popen.pid))
        tmp.replace(self.pid_file)
        log.info("started %s pid %d", self.name, self._popen.pid)
        return self._popen.pid

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
