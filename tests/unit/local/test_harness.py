"""The harness the end-to-end tests and the benchmarks share (recluster.local.harness): what it
applies is what the validator accepts, and its waits fail naming what they waited for."""

from __future__ import annotations

import pytest

from recluster.api.validation import validate_rec, validate_redb
from recluster.local import harness

pytestmark = pytest.mark.unit


def test_manifests_are_valid_and_keep_the_overrides() -> None:
    assert validate_rec(harness.rec_manifest()) == []
    assert harness.rec_manifest("other", nodes=5)["spec"]["nodes"] == 5
    redb = harness.redb_manifest("db", replication=True)
    assert validate_redb(redb, cluster_exists=True) == []
    assert redb["spec"] == {"memorySize": "100MB", "replication": True}


def test_the_node_selector_names_the_node_pods_of_rec() -> None:
    assert harness.NODE_SELECTOR == "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=node"


def test_eventually_returns_the_first_truthy_answer_or_fails_naming_the_wait() -> None:
    answers = iter([None, 0, "ready"])
    assert harness.eventually("the answer", lambda: next(answers), timeout=5, interval=0) == "ready"
    with pytest.raises(AssertionError, match="waiting for the impossible"):
        harness.eventually("the impossible", lambda: False, timeout=0, interval=0)
