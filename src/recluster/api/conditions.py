"""Status conditions (metav1.Condition) kept the Kubernetes way: one entry per type, and
lastTransitionTime moves only when the status flips. The clock is an argument."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

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
