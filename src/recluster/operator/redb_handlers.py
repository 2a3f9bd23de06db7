"""kopf registrations of the REDB controller only: each parses what kopf hands over and delegates.

- watch events on REDBs start or wake that REDB's level-based loop (operator/redb/loop.py);
- the loops stop with the operator;
- the validating webhook (when a webhook server is configured) uses the loop's validator with the
  same facts: the cluster exists, the ports the cluster's other databases use."""

from __future__ import annotations

from typing import Any

import kopf

from recluster.operator.redb.loop import RedbLoops
from recluster.operator.redb.validate import redb_admission
from recluster.operator.startup import Runtime

REDB = ("app.redislabs.com", "v1alpha1", "redisenterprisedatabases")


def _loops(memo: Any) -> RedbLoops:
    loops: RedbLoops | None = getattr(memo, "redb_loops", None)
    if loops is None:
        runtime: Runtime = memo.runtime
        loops = RedbLoops(runtime.kube, runtime.settings.cluster_domain, runtime.settings.resync_seconds)
        memo.redb_loops = loops
    return loops


@kopf.on.event(*REDB)
async def redb_changed(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    _loops(memo).poke(namespace or "", name)


@kopf.on.cleanup()
async def stop_redb_loops(*, memo: Any, **_: Any) -> None:
    loops: RedbLoops | None = getattr(memo, "redb_loops", None)
    if loops is not None:
        await loops.stop()


async def validate(*, body: Any, memo: Any, warnings: list[str], **kwargs: Any) -> None:
    (await redb_admission(memo.runtime, body, kwargs.get("old"))).answer(warnings)


def register_webhook() -> None:
    """The REDB validating webhook (path /validate-redb), only with a webhook server."""
    kopf.on.validate(*REDB, id="validate-redb", operations=["CREATE", "UPDATE"])(validate)
