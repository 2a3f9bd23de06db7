"""How the local tooling reports long work: each step announced, timed, and reported done or failed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console


def console_or_stderr(console: Console | None) -> Console:
    return console if console is not None else Console(stderr=True)


@contextlib.contextmanager
def step(console: Console, what: str) -> Iterator[None]:
    """One step of work: announced, timed, and reported done (or failed)."""
    console.print(f"[bold]\u2192[/bold] {what} ...", soft_wrap=True)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        elapsed = time.monotonic() - started
        console.print(f"[red]\u2717[/red] {what} failed after {elapsed:.1f}s", soft_wrap=True)
        raise
    console.print(f"[green]\u2713[/green] {what} ({time.monotonic() - started:.1f}s)", soft_wrap=True)
