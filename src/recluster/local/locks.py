"""Cross-process locks on the project's caches: two runs on one machine (a test run and `local up`, or
two test runs on a new machine) build each thing once, the second waiting for the first."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from recluster.local.run import CommandError


@contextlib.contextmanager
def locked(lock_file: Path, console: Console, what: str, timeout: float = 3600) -> Iterator[None]:
    """An exclusive flock on `lock_file` for the block; says so when it has to wait for another
    process (another test run, `recluster local up`) doing the same work in the same cache, and gives
    up after `timeout` seconds."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as f:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CommandError(f"gave up after {timeout:.0f}s waiting for another process: {what} "
                                       f"(lock {lock_file})") from None
                if not announced:
                    console.print(f"waiting for another process: {what} (lock {lock_file}) ...",
                                  soft_wrap=True)
                    announced = True
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
