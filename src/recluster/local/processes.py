"""Processes the local cluster starts: detached, logged to a file, recorded by a pid file, and
stopped only by that record (pid plus start time, so a reused pid is never hit)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; fields after it start past the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def start(
    name: str,
    argv: Sequence[str],
    *,
    run_dir: Path,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    netns: str | None = None,
) -> ProcessRecord:
    """Start argv in its own session (so it survives the CLI and is stopped as a group)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    if netns is not None:
        # enter only the network namespace: `ip netns exec` would also give the process a mount
        # namespace of its own, and a node's kubelet and containerd must see each other's mounts
        argv = ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            close_fds=True,
        )
    finally:
        log.close()
    ticks = None
    for _ in range(50):
        ticks = _start_ticks(proc.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    if ticks is None:
        raise RuntimeError(f"{name} exited at once; see {log_dir / (name + '.log')}")
    record = ProcessRecord(name, proc.pid, ticks)
    (run_dir / f"{name}.pid").write_text(f"{record.pid} {record.start_ticks}\n")
    return record


def read(name: str, run_dir: Path) -> ProcessRecord | None:
    try:
        pid, ticks = (run_dir / f"{name}.pid").read_text().split()
    except (OSError, ValueError):
        return None
    return ProcessRecord(name, int(pid), int(ticks))


def running(run_dir: Path) -> list[ProcessRecord]:
    records = [read(p.stem, run_dir) for p in sorted(run_dir.glob("*.pid"))]
    return [r for r in records if r is not None and r.alive()]


def stop(name: str, run_dir: Path, *, timeout: float = 15.0) -> bool:
    """Stop the recorded process and its session: SIGTERM, then SIGKILL after `timeout`.
    Returns True if it was running."""
    record = read(name, run_dir)
    pid_file = run_dir / f"{name}.pid"
    if record is None or not record.alive():
        _kill_members(record)
        pid_file.unlink(missing_ok=True)
        return False
    _signal_members(record, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while record.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_members(record)
    pid_file.unlink(missing_ok=True)
    return True


def session_members(record: ProcessRecord) -> list[int]:
    """Processes in the session we created for `record`: same session id, started no earlier.
    (start_new_session made the leader's pid the session id; the start time rules out a reused pid.)"""
    leader_ticks = _start_ticks(record.pid)
    if leader_ticks is not None and leader_ticks != record.start_ticks:
        # the pid now belongs to someone else; Linux does not reuse a pid while it still names a
        # session, so no process of ours is left in a session with this id
        return []
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == record.pid and int(fields[19]) >= record.start_ticks and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _signal_members(record: ProcessRecord, sig: signal.Signals) -> None:
    for pid in session_members(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _kill_members(record: ProcessRecord | None) -> None:
    if record is None:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        members = session_members(record)
        if not members:
            return
        _signal_members(record, signal.SIGKILL)
        time.sleep(0.05)
