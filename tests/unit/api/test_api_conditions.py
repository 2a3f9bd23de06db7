"""Conditions keep one entry per type and a transition time that moves only on a flip."""

from __future__ import annotations

import pytest

from recluster.api.conditions import ConditionType, find_condition, set_condition

pytestmark = pytest.mark.unit

T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_new_condition_is_appended() -> None:
    conditions = set_condition(
        None,
        type_=ConditionType.READY,
        status="False",
        reason="Bootstrapping",
        message="0/3 nodes ready",
        observed_generation=1,
        now=T1,
    )
    assert [(c.type, c.status, c.last_transition_time) for c in conditions] == [("Ready", "False", T1)]


def test_transition_time_moves_only_on_a_flip() -> None:
    first = set_condition(
        None, type_="Ready", status="False", reason="A", message="m", observed_generation=1, now=T1
    )
    same = set_condition(
        first, type_="Ready", status="False", reason="B", message="n", observed_generation=2, now=T2
    )
    ready = find_condition(same, "Ready")
    assert ready is not None and ready.last_transition_time == T1 and ready.reason == "B"
    assert ready.observed_generation == 2
    flipped = set_condition(
        same, type_="Ready", status="True", reason="Running", message="", observed_generation=2, now=T2
    )
    assert find_condition(flipped, "Ready").last_transition_time == T2  # type: ignore[union-attr]


def test_other_conditions_keep_their_place() -> None:
    conditions = set_condition(
        None, type_="Ready", status="True", reason="r", message="", observed_generation=1, now=T1
    )
    conditions = set_condition(
        conditions, type_="Degraded", status="False", reason="r", message="", observed_generation=1, now=T1
    )
    conditions = set_condition(
        conditions, type_="Ready", status="False", reason="r", message="", observed_generation=1, now=T2
    )
    assert [c.type for c in conditions] == ["Ready", "Degraded"]
    assert conditions[0].manifest() == {
        "type": "Ready",
        "status": "False",
        "reason": "r",
        "message": "",
        "lastTransitionTime": T2,
        "observedGeneration": 1,
    }
