"""kopf registrations only: each handler parses what kopf hands over and delegates.

- one daemon per REC runs the level-based loop (rec/loop.py);
- watch events on the REC's children (pods, StatefulSets, Services, Deployments) wake that loop;
- the deletion handler tears the cluster down while the finalizer holds the REC;
- the validating webhook uses the loop's validator."""

from __future__ import annotations

from typing import Any

import kopf

from recluster.operator import redb_handlers  # the REDB controller registers its own handlers
from recluster.operator.rec.delete import tear_down
from recluster.operator.rec.loop import reconcile_forever
from recluster.operator.specs.names import APP, APP_LABEL, CLUSTER_LABEL
from recluster.operator.startup import ANNOTATION_PREFIX, FINALIZER, Runtime
from recluster.operator.webhook import rec_admission

REC = ("app.redislabs.com", "v1", "redisenterpriseclusters")
OURS: dict[str, Any] = {APP_LABEL: APP, CLUSTER_LABEL: kopf.PRESENT}


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = 30  # kopf's own events: warnings and errors only
    settings.watching.server_timeout = 300
    # the namespaces are given: no cluster-wide scanning of namespaces and CRDs (no ClusterRole)
    settings.scanning.disabled = True
    settings.watching.client_timeout = 330


@kopf.daemon(*REC, id="reconcile", cancellation_timeout=10.0)
async def reconcile(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await reconcile_forever(_runtime(memo), namespace or "", name)


@kopf.on.event(*REC)
async def rec_changed(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    _runtime(memo).wakeup(namespace or "", name).set()


@kopf.on.event("", "v1", "pods", labels=OURS)
@kopf.on.event("apps", "v1", "statefulsets", labels=OURS)
@kopf.on.event("apps", "v1", "deployments", labels=OURS)
@kopf.on.event("", "v1", "services", labels=OURS)
async def child_changed(*, namespace: str | None, labels: Any, memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    key = (namespace or "", str(labels.get(CLUSTER_LABEL)))
    if key in runtime.wakeups:
        runtime.wakeups[key].set()


@kopf.on.delete(*REC, id="tear-down")
async def delete(*, body: Any, memo: Any, **_: Any) -> None:
    remaining = await tear_down(_runtime(memo).kube, dict(body))
    if remaining:
        raise kopf.TemporaryError(f"{remaining} node pods still stopping", delay=3)


def validate(*, body: Any, warnings: list[str], **kwargs: Any) -> None:
    rec_admission(body, kwargs.get("old")).answer(warnings)


def register_webhook() -> None:
    """The validating webhook, only when a webhook server is configured (kopf refuses to run
    admission handlers without one)."""
    kopf.on.validate(*REC, id="validate-rec", operations=["CREATE", "UPDATE"])(validate)
    redb_handlers.register_webhook()
