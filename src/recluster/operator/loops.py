"""The per-object level loops both controllers run (REC and REDB alike).

One loop per object: reconcile, then wait for a change (a watch event on the object or one of its
children pokes the loop) or the delay the reconcile asked for, whichever comes first. So two
reconciles of one object never overlap, and a restarted operator starts from what it reads. A failed
reconcile is retried with a capped exponential backoff and the loop lives on; a reconcile that
returns None (the object is gone, or its deletion is done) ends it.

`Loops` is the registry of one kind's loops: made once at startup (runner.py), kept in kopf's memo,
poked by the handlers, stopped at cleanup. The loops are plain asyncio tasks, so kopf holds no
object with a finalizer of its own: each reconciler adds and removes its kind's contract finalizer
itself (operator/finalizers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from recluster.operator import metrics

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
# Waits are spread by this fraction either way: objects made (or found at startup) together would
# otherwise resync together forever, a burst of reconciles (and of new REST connections) every period.
JITTER = 0.1

# (namespace, name) -> the seconds until the next reconcile, or None when the loop should end
Reconcile = Callable[[str, str], Awaitable[float | None]]


def backoff(failures: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** min(failures, 5))


def spread(delay: float) -> float:
    return delay * random.uniform(1.0 - JITTER, 1.0 + JITTER)


async def level_loop(
    kind: str, what: str, reconcile: Callable[[], Awaitable[float | None]], wake: asyncio.Event
) -> None:
    """Run until `reconcile` returns None (the object is gone) or the task is cancelled. `what`
    names the object in logs (`REDB ns/name`)."""
    failures = 0
    while True:
        wake.clear()
        started = time.monotonic()
        metrics.RECONCILES.labels(kind).inc()
        try:
            delay = await reconcile()
            failures = 0
            if delay is None and not wake.is_set():
                return
            # woken while it read the object gone: look again (made anew under the same name?)
            delay = 0.0 if delay is None else delay
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is retried: the loop must live on
            failures += 1
            metrics.RECONCILE_ERRORS.labels(kind).inc()
            delay = backoff(failures)
            log.warning("reconcile of %s failed (%s: %s); retry in %.0fs", what, type(exc).__name__, exc,
                        delay)
            log.debug("reconcile failure", exc_info=True)
        finally:
            metrics.RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=spread(delay))


class Loops:
    """The level loops of one kind, one per object, keyed by (namespace, name)."""

    def __init__(self, kind: str, short: str, reconcile: Reconcile) -> None:
        self.kind = kind  # the metrics' label
        self.short = short  # the logs' name of the kind (REC, REDB)
        self._reconcile = reconcile
        self._loops: dict[tuple[str, str], tuple[asyncio.Task[None], asyncio.Event]] = {}

    def __contains__(self, key: tuple[str, str]) -> bool:
        entry = self._loops.get(key)
        return entry is not None and not entry[0].done()

    def poke(self, namespace: str, name: str) -> None:
        """A watch event of the object: wake its loop, starting it when it is not running."""
        if self.wake(namespace, name):
            return
        wake = asyncio.Event()
        task = asyncio.create_task(self._run(namespace, name, wake), name=f"{self.short} {namespace}/{name}")
        self._loops[(namespace, name)] = (task, wake)

    def wake(self, namespace: str, name: str) -> bool:
        """A watch event of one of the object's children: wake its loop when it runs (a child never
        starts one: the object's own events do); whether it runs."""
        entry = self._loops.get((namespace, name))
        if entry is None or entry[0].done():
            return False
        entry[1].set()
        return True

    async def stop(self) -> None:
        tasks = [task for task, _ in self._loops.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops.clear()

    async def _run(self, namespace: str, name: str, wake: asyncio.Event) -> None:
        try:
            await level_loop(self.kind, f"{self.short} {namespace}/{name}",
                             lambda: self._reconcile(namespace, name), wake)
        finally:
            entry = self._loops.get((namespace, name))
            if entry is not None and entry[1] is wake:
                self._loops.pop((namespace, name), None)
