"""The one way src/recluster/local/ runs the host's tools (ip, go, buildah, ctr, kubectl, ...): with a
timeout that kills the command's whole process group, and one error type that says what failed, its
last output lines and where its full output was kept."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from recluster.local.paths import cache_dir

TAIL_LINES = 15
# Failed commands' full output is kept under <cache>/logs; the newest few stay.
KEEP_LOGS = 30


class CommandError(RuntimeError):
    """A command or a step of the local cluster failed. The message says what failed, then (when
    there was output) its last lines and the file holding all of it."""

    def __init__(
        self,
        what: str,
        *,
        argv: Sequence[str] | None = None,
        returncode: int | None = None,
        tail: Sequence[str] = (),
        log: Path | None = None,
    ):
        self.what = what
        self.argv = list(argv) if argv is not None else None
        self.returncode = returncode
        self.tail = list(tail)
        self.log = log
        parts = [what]
        if self.tail:
            parts.append("last output:\n" + "\n".join(f"  | {line}" for line in self.tail))
        if log is not None:
            parts.append(f"full output: {log}")
        super().__init__("\n".join(parts))


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
    console: Console | None = None,
    stream: bool = False,
    tail_lines: int = TAIL_LINES,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a session of its own. Returns the CompletedProcess (stdout and stderr apart; with
    `stream`, stderr is merged into stdout and each line is echoed to `console` as it comes).
    Raises CommandError when the command is missing, runs past `timeout` seconds (its process group
    is killed), or exits non-zero while `check`."""
    argv = list(argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stream else subprocess.PIPE,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"`{argv[0]}` is not installed (bin/setup installs what recluster needs)",
                           argv=argv) from exc
    try:
        if stream:
            stdout, stderr, timed_out = _stream(proc, input, timeout, console or Console(stderr=True))
        else:
            stdout, stderr, timed_out = _communicate(proc, input, timeout)
    except BaseException:
        _kill(proc)
        raise
    if timed_out:
        _fail(argv, None, stdout, stderr, f"timed out after {timeout:.0f}s", tail_lines)
    assert proc.returncode is not None
    if check and proc.returncode != 0:
        _fail(argv, proc.returncode, stdout, stderr, f"exited with status {proc.returncode}", tail_lines)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _communicate(proc: subprocess.Popen[bytes], input: str | None, timeout: float) -> tuple[str, str, bool]:
    data = input.encode() if input is not None else None
    try:
        out, err = proc.communicate(data, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        timed_out = True
    return out.decode(errors="replace"), (err or b"").decode(errors="replace"), timed_out


def _stream(
    proc: subprocess.Popen[bytes], input: str | None, timeout: float, console: Console
) -> tuple[str, str, bool]:
    lines: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            console.print(f"  [dim]{escape(line)}[/dim]", highlight=False, soft_wrap=True)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    if input is not None and proc.stdin is not None:  # after the reader started: no pipe deadlock
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(input.encode())
        proc.stdin.close()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.wait()
        timed_out = True
    thread.join(timeout=30)
    return "\n".join(lines) + ("\n" if lines else ""), "", timed_out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's process group (it has a session of its own, so only its processes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def _fail(argv: list[str], code: int | None, stdout: str, stderr: str, what: str, tail_lines: int) -> None:
    lines = stdout.splitlines() + stderr.splitlines()
    log = keep_output(argv, stdout, stderr) if lines else None
    raise CommandError(f"command {' '.join(argv)!r} {what}", argv=argv, returncode=code,
                       tail=lines[-tail_lines:], log=log)


def keep_output(argv: Sequence[str], stdout: str, stderr: str) -> Path | None:
    """Write a failed command's whole output to <cache>/logs and return the file (None if it cannot
    be written: the error is what matters then)."""
    logs = cache_dir() / "logs"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(argv[0]).name)[:40]
    path = logs / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{name}.log"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        path.write_text(f"$ {' '.join(argv)}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n")
        olds = sorted(logs.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[KEEP_LOGS:]:
            old.unlink(missing_ok=True)
    except OSError:
        return None
    return path
