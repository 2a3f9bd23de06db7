"""The REC's status, as pure functions of what one reconcile observed: the conditions, a
`StatusChange` event for each state change (written with operator/status.py, shared with the REDB),
an `InvalidConfiguration` warning per new problem and an `IgnoredFields` warning when the spec sets
fields the operator does not act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recluster.api.conditions import (
    ConditionType,
    invalid_spec_status,
    spec_is_valid,
    updated_conditions,
)
from recluster.api.quorum import majority
from recluster.api.rec import ClusterState
from recluster.operator.status import now_rfc3339

# what an invalid spec sets besides specStatus (report_invalid's `fields`)
INVALID_FIELDS = {"state": ClusterState.INVALID.value}


@dataclass(frozen=True)
class Observed:
    """What one reconcile concluded about a valid REC."""

    state: ClusterState
    message: str
    ready_nodes: int
    desired_nodes: int
    version: str | None = None
    converging: bool = True  # Progressing
    bundled_versions: list[dict[str, Any]] | None = None  # status.bundledDatabaseVersions

    @property
    def ready(self) -> bool:
        return self.state in (ClusterState.RUNNING, ClusterState.RUNNING_ROLLING_UPDATE) and (
            self.ready_nodes >= majority(self.desired_nodes)
        )

    @property
    def degraded(self) -> bool:
        started = self.state in (ClusterState.RUNNING, ClusterState.RUNNING_ROLLING_UPDATE)
        return self.state == ClusterState.ERROR or (started and self.ready_nodes < self.desired_nodes)


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
    if observed.bundled_versions:
        status["bundledDatabaseVersions"] = observed.bundled_versions
    return status


def invalid_status(body: dict[str, Any], message: str) -> dict[str, Any]:
    return {**INVALID_FIELDS, **invalid_spec_status(body, message, now_rfc3339())}


def state_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """(reason, message) of the events a status change deserves: one per change of state."""
    if old.get("state") == new.get("state"):
        return []
    return [("StatusChange", f"state changed from {old.get('state') or 'none'} to {new.get('state')}")]
