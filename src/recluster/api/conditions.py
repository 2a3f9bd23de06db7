"""Status conditions (metav1.Condition) kept the Kubernetes way: one entry per type, and
lastTransitionTime moves only when the status flips. The clock is an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Literal

from recluster.api.common import Condition


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SPEC_VALID = "SpecValid"


def find_condition(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    return next((condition for condition in conditions or [] if condition.type == type_), None)


def set_condition(
    conditions: Sequence[Condition] | None,
    *,
    type_: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    observed_generation: int | None,
    now: str,
) -> list[Condition]:
    """A new list with the condition of `type_` set; `now` (RFC 3339) becomes its transition time
    only if it is new or its status changed. The other conditions keep their order."""
    previous = find_condition(conditions, type_)
    transition = previous.last_transition_time if previous is not None and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    result = [updated if condition.type == type_ else condition for condition in conditions or []]
    return result if previous is not None else [*result, updated]


Status = Literal["True", "False", "Unknown"]
# (type, status, reason, message) of one condition to set
ConditionUpdate = tuple[ConditionType, Status, str, str]
SPEC_IS_VALID: ConditionUpdate = (ConditionType.SPEC_VALID, "True", "Valid", "the spec is valid")
# SpecValid's reason, and the Warning event's, when the spec is valid but sets fields the operator
# does not act on (recluster.api.support)
IGNORED_FIELDS = "IgnoredFields"
INVALID_CONFIGURATION = "InvalidConfiguration"


def spec_is_invalid(message: str) -> ConditionUpdate:
    return (ConditionType.SPEC_VALID, "False", INVALID_CONFIGURATION, message)


def spec_is_valid(warnings: str) -> ConditionUpdate:
    """SpecValid True; `warnings` (one message, empty when none) names the fields not acted on."""
    if not warnings:
        return SPEC_IS_VALID
    return (ConditionType.SPEC_VALID, "True", IGNORED_FIELDS,
            f"the spec is valid, but these fields are not acted on: {warnings}")


def _spec_condition(status: Mapping[str, Any] | None) -> Mapping[str, Any]:
    conditions = (status or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == ConditionType.SPEC_VALID), {})


def spec_event(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of the Warning event a new status calls for, from `old`, the status before:
    the spec is invalid (InvalidConfiguration) or valid with fields not acted on (IgnoredFields),
    and the SpecValid condition says something new."""
    before, after = _spec_condition(old), _spec_condition(new)
    if (before.get("status"), before.get("message")) == (after.get("status"), after.get("message")):
        return None
    if after.get("status") == "False":
        return INVALID_CONFIGURATION, str(after.get("message") or "")
    if after.get("reason") == IGNORED_FIELDS:
        return IGNORED_FIELDS, str(after.get("message") or "")
    return None


def updated_conditions(
    body: Mapping[str, Any], updates: Sequence[ConditionUpdate], now: str
) -> list[dict[str, Any]]:
    """The conditions of an object's status (a REC's or REDB's body) with `updates` set for its
    current generation, as they go into the status patch."""
    generation = body["metadata"].get("generation")
    conditions = [Condition.model_validate(c) for c in (body.get("status") or {}).get("conditions") or []]
    for type_, status, reason, message in updates:
        conditions = set_condition(conditions, type_=type_, status=status, reason=reason, message=message,
                                   observed_generation=generation, now=now)
    return [c.manifest() for c in conditions]


def invalid_spec_status(body: Mapping[str, Any], message: str, now: str) -> dict[str, Any]:
    """specStatus Invalid for the current generation; what the status said before is kept."""
    return {
        "specStatus": "Invalid",
        "observedGeneration": body["metadata"].get("generation"),
        "conditions": updated_conditions(body, [spec_is_invalid(message)], now),
    }
