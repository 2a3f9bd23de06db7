"""The level-based loop of one REC (operator/level_loop.py): reconcile, then wait for a change (a
watch event on the REC or one of its children) or the resync period."""

from __future__ import annotations

from recluster.operator.level_loop import level_loop
from recluster.operator.rec.reconcile import reconcile_rec
from recluster.operator.startup import Runtime

KIND = "RedisEnterpriseCluster"


async def reconcile_forever(rt: Runtime, namespace: str, name: str) -> None:
    try:
        await level_loop(KIND, f"{namespace}/{name}", lambda: reconcile_rec(rt, namespace, name),
                         rt.wakeup(namespace, name))
    finally:
        rt.wakeups.pop((namespace, name), None)
