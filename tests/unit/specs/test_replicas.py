"""The StatefulSet's replicas, decided once (statefulset_replicas) and taken by the builder."""

from __future__ import annotations

import pytest

from recluster.api import check_rec
from recluster.operator.specs import build_rec_children
from recluster.operator.specs.statefulset import build_statefulset, statefulset_replicas

pytestmark = pytest.mark.unit

REC = {
    "apiVersion": "app.redislabs.com/v1",
    "kind": "RedisEnterpriseCluster",
    "metadata": {"name": "rec", "namespace": "ns", "uid": "u-1"},
    "spec": {"nodes": 3},
}


def test_made_or_growing_takes_the_spec() -> None:
    assert statefulset_replicas(3, None, top_node_gone=False) == 3
    assert statefulset_replicas(5, 3, top_node_gone=False) == 5
    assert statefulset_replicas(3, 3, top_node_gone=True) == 3


def test_shrinking_goes_one_pod_at_a_time_once_the_top_node_left_the_cluster() -> None:
    assert statefulset_replicas(3, 5, top_node_gone=False) == 5
    assert statefulset_replicas(3, 5, top_node_gone=True) == 4


def test_the_builder_takes_the_replicas() -> None:
    rec = check_rec(REC)
    assert build_statefulset(rec, image="i")["spec"]["replicas"] == 3
    assert build_statefulset(rec, image="i", replicas=4)["spec"]["replicas"] == 4
    children = build_rec_children(
        rec, image="i", password_secret_exists=True, tls_secret_exists=True, replicas=5
    )
    assert next(c for c in children if c["kind"] == "StatefulSet")["spec"]["replicas"] == 5
