"""kopf registrations of the REC controller only: each handler parses what kopf hands over and
delegates to the REC loops (operator/loops.py, made once at startup and kept in kopf's memo).

- watch events on a REC start or wake its level loop (rec/reconcile.py), deletion included: the
  reconciler holds the REC with the contract finalizer and tears the cluster down itself;
- watch events on the REC's children (pods, StatefulSets, Services, Deployments) wake that loop;
- the validating webhook (when a webhook server is configured) uses the loop's validator."""

from __future__ import annotations

from typing import Any

import kopf

from recluster.api.common import GROUP
from recluster.api.rec import PLURAL, VERSION
from recluster.operator.context import services
from recluster.operator.specs.names import APP, APP_LABEL, CLUSTER_LABEL
from recluster.operator.webhook import rec_admission

OURS: dict[str, Any] = {APP_LABEL: APP, CLUSTER_LABEL: kopf.PRESENT}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def rec_changed(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    services(memo).rec.poke(namespace or "", name)


@kopf.on.event("", "v1", "pods", labels=OURS)
@kopf.on.event("apps", "v1", "statefulsets", labels=OURS)
@kopf.on.event("apps", "v1", "deployments", labels=OURS)
@kopf.on.event("", "v1", "services", labels=OURS)
async def child_changed(*, namespace: str | None, labels: Any, memo: Any, **_: Any) -> None:
    services(memo).rec.wake(namespace or "", str(labels.get(CLUSTER_LABEL)))


def validate(*, body: Any, warnings: list[str], **kwargs: Any) -> None:
    rec_admission(body, kwargs.get("old")).answer(warnings)


def register_webhook() -> None:
    """The REC validating webhook (path /validate-rec), only with a webhook server (kopf refuses to
    run admission handlers without one)."""
    kopf.on.validate(GROUP, VERSION, PLURAL, id="validate-rec", operations=["CREATE", "UPDATE"])(validate)
