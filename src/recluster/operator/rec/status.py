"""The REC's status and events: one merge-patch of `status` per reconcile when something changed,
a `StatusChange` event for each state change, an `InvalidConfiguration` warning per new problem and
an `IgnoredFields` warning when the spec sets fields the operator does not act on."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from recluster.api.conditions import (
    ConditionType,
    invalid_spec_status,
    spec_event,
    spec_is_valid,
    updated_conditions,
)
from recluster.api.rec import ClusterState
from recluster.clients.kubernetes import Kube, KubeError

log = logging.getLogger(__name__)

REC_API = "app.redislabs.com/v1"
REC_KIND = "RedisEnterpriseCluster"
COMPONENT = "redis-enterprise-operator"


@dataclass(frozen=True)
class Observed:
    """What one reconcile concluded about a valid REC."""

    state: ClusterState
    message: str
    ready_nodes: int
    desired_nodes: int
    version: str | None = None
    converging: bool = True  # Progressing

    @property
    def ready(self) -> bool:
        return self.state in (ClusterState.RUNNING, ClusterState.RUNNING_ROLLING_UPDATE) and (
            self.ready_nodes >= (self.desired_nodes // 2 + 1)
        )

    @property
    def degraded(self) -> bool:
        started = self.state in (ClusterState.RUNNING, ClusterState.RUNNING_ROLLING_UPDATE)
        return self.state == ClusterState.ERROR or (started and self.ready_nodes < self.desired_nodes)


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_status(body: dict[str, Any], observed: Observed, warnings: str = "") -> dict[str, Any]:
    """The status of a valid REC; `warnings` names the spec's fields the operator does not act on."""
    reason = observed.state.value
    conditions = updated_conditions(
        body,
        [
            spec_is_valid(warnings),
            (ConditionType.READY, "True" if observed.ready else "False", reason, observed.message),
            (ConditionType.PROGRESSING, "True" if observed.converging else "False", reason,
             observed.message if observed.converging else "converged"),
            (ConditionType.DEGRADED, "True" if observed.degraded else "False", reason,
             f"{observed.ready_nodes} of {observed.desired_nodes} nodes ready"),
        ],
        now_rfc3339(),
    )
    status: dict[str, Any] = {
        "state": observed.state.value,
        "specStatus": "Valid",
        "observedGeneration": body["metadata"].get("generation"),
        "readyNodes": observed.ready_nodes,
        "conditions": conditions,
    }
    if observed.version:
        status["version"] = observed.version
    return status


def invalid_status(body: dict[str, Any], message: str) -> dict[str, Any]:
    return {"state": ClusterState.INVALID.value, **invalid_spec_status(body, message, now_rfc3339())}


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal apart from condition timestamps that would not move anyway."""
    return all(old.get(key) == value for key, value in new.items())


async def write_status(kube: Kube, body: dict[str, Any], status: dict[str, Any]) -> None:
    """Patch the status when it changed, and post the events the change calls for."""
    old = body.get("status") or {}
    if _same(old, status):
        return
    meta = body["metadata"]
    await kube.merge_patch(
        REC_API, REC_KIND, meta["namespace"], meta["name"], {"status": status}, subresource="status"
    )
    if old.get("state") != status.get("state"):
        await post_event(
            kube,
            body,
            "Normal",
            "StatusChange",
            f"state changed from {old.get('state') or 'none'} to {status['state']}",
        )
    warning = spec_event(old, status)
    if warning is not None:
        await post_event(kube, body, "Warning", *warning)


async def post_event(kube: Kube, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    try:
        await kube.post_event(body, type_=type_, reason=reason, message=message, component=COMPONENT)
    except KubeError as exc:
        log.warning("cannot post event %s: %s", reason, exc)


async def report_invalid(kube: Kube, body: dict[str, Any], message: str) -> None:
    """specStatus Invalid and one warning naming the fields (write_status); nothing else is touched."""
    await write_status(kube, body, invalid_status(body, message))
