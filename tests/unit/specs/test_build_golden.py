"""Golden files of every object built for a minimal and for a full-featured REC.
Regenerate with UPDATE_GOLDEN=1 (see conftest.py) and review the diff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recluster.api import RedisEnterpriseCluster

pytestmark = pytest.mark.unit

Golden = Callable[[str, list[dict[str, Any]]], None]
BuildAll = Callable[[RedisEnterpriseCluster], list[dict[str, Any]]]


def test_minimal_rec(minimal_rec: RedisEnterpriseCluster, build_all: BuildAll, golden: Golden) -> None:
    golden("rec-minimal", build_all(minimal_rec))


def test_full_rec(full_rec: RedisEnterpriseCluster, build_all: BuildAll, golden: Golden) -> None:
    golden("rec-full", build_all(full_rec))
