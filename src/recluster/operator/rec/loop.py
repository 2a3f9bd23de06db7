"""The level-based loop of one REC: reconcile, then wait for a change (a watch event on the REC or
one of its children) or the resync period, whichever comes first. One loop per REC, so two
reconciles of one REC never overlap; a failed reconcile is retried with a capped backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from recluster.operator import metrics
from recluster.operator.rec.reconcile import reconcile_rec
from recluster.operator.startup import Runtime

log = logging.getLogger(__name__)

KIND = "RedisEnterpriseCluster"
MAX_BACKOFF = 30.0


async def reconcile_forever(rt: Runtime, namespace: str, name: str) -> None:
    wake = rt.wakeup(namespace, name)
    failures = 0
    try:
        while True:
            wake.clear()
            started = time.monotonic()
            metrics.RECONCILES.labels(KIND).inc()
            try:
                delay = await reconcile_rec(rt, namespace, name)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure is retried: the loop must live on
                failures += 1
                metrics.RECONCILE_ERRORS.labels(KIND).inc()
                delay = min(MAX_BACKOFF, 2.0 ** min(failures, 5))
                log.warning(
                    "reconcile of %s/%s failed (%s: %s); retry in %.0fs",
                    namespace,
                    name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                log.debug("reconcile failure", exc_info=True)
            finally:
                metrics.RECONCILE_SECONDS.labels(KIND).observe(time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
    finally:
        rt.wakeups.pop((namespace, name), None)
