"""The level-based loop every controller runs per object: reconcile, then wait for a change (the
wake-up event, set by watch events on the object or its children) or the delay the reconcile asked
for, whichever comes first. One loop per object, so two reconciles of it never overlap; a failed
reconcile is retried with a capped exponential backoff and the loop lives on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from recluster.operator import metrics

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


def backoff(failures: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** min(failures, 5))


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
            if delay is None:
                return
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
            await asyncio.wait_for(wake.wait(), timeout=delay)
