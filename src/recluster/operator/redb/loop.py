"""One level-based loop per REDB: reconcile, then wait for a watch event or the resync period.
The loops are plain asyncio tasks started by the REDB's watch events (so kopf adds no finalizer of
its own: the REDB carries the contract's finalizer, managed by the reconciler) and ended when the
REDB is gone or the operator stops."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from recluster.clients.kubernetes import Kube
from recluster.operator.level_loop import level_loop
from recluster.operator.redb.reconcile import reconcile_redb

KIND = "RedisEnterpriseDatabase"


@dataclass
class RedbLoops:
    kube: Kube
    cluster_domain: str
    resync_seconds: float
    loops: dict[tuple[str, str], tuple[asyncio.Task[None], asyncio.Event]] = field(default_factory=dict)

    def poke(self, namespace: str, name: str) -> None:
        """Wake the REDB's loop, starting it when it is not running."""
        key = (namespace, name)
        entry = self.loops.get(key)
        if entry is not None and not entry[0].done():
            entry[1].set()
            return
        wake = asyncio.Event()
        task = asyncio.create_task(self._run(namespace, name, wake), name=f"redb {namespace}/{name}")
        self.loops[key] = (task, wake)

    async def stop(self) -> None:
        tasks = [task for task, _ in self.loops.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.loops.clear()

    async def _run(self, namespace: str, name: str, wake: asyncio.Event) -> None:
        async def reconcile() -> float | None:
            return await reconcile_redb(self.kube, namespace, name, cluster_domain=self.cluster_domain,
                                        resync=self.resync_seconds)

        try:
            await level_loop(KIND, f"REDB {namespace}/{name}", reconcile, wake)
        finally:
            entry = self.loops.get((namespace, name))
            if entry is not None and entry[1] is wake:
                self.loops.pop((namespace, name), None)
