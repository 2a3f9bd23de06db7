"""Which node claims the operator grows: exactly those asking for less than the spec, never one
being deleted, never a shrink."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.quantity import format_bytes
from recluster.operator.rec.volumes import claims_to_grow

pytestmark = pytest.mark.unit

GI = 1024**3


def claim(name: str, size: int, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-26T10:00:00Z"
    return {"metadata": meta, "spec": {"resources": {"requests": {"storage": format_bytes(size)}}}}


def test_smaller_claims_grow_equal_and_larger_stay() -> None:
    claims = [claim("c", 2 * GI), claim("a", 1 * GI), claim("b", 3 * GI), claim("d", 3 * GI // 2)]
    assert claims_to_grow(claims, 2 * GI) == ["a", "d"]


def test_a_claim_being_deleted_or_without_request_is_left_alone() -> None:
    bare = {"metadata": {"name": "bare"}, "spec": {}}
    assert claims_to_grow([claim("gone", GI, deleting=True), bare], 2 * GI) == []


@given(st.lists(st.integers(min_value=1, max_value=64), max_size=8), st.integers(min_value=1, max_value=64))
def test_grows_exactly_the_smaller_ones(sizes: list[int], wanted: int) -> None:
    claims = [claim(f"c{i}", size * GI) for i, size in enumerate(sizes)]
    assert claims_to_grow(claims, wanted * GI) == sorted(f"c{i}" for i, s in enumerate(sizes) if s < wanted)
