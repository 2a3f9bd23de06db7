"""persistentSpec.volumeSize grows on a running REC with enablePersistentVolumeResize: every node
claim is patched and grown by the StorageClass's provisioner, the StatefulSet's claim template
follows (recreated, pods kept), the cluster stays Running, and the change is an event."""

from __future__ import annotations

import pytest
from tests.e2e.local.support import apply
from tests.integration.operator.support import events

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    eventually,
    get,
    ready_pods,
    rec_manifest,
    rec_status,
    wait_state,
)

pytestmark = pytest.mark.e2e

NODE_SELECTOR = "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=node"


def claim_sizes(cluster: LocalCluster, namespace: str) -> dict[str, tuple[str, str]]:
    """claim -> (requested, capacity)."""
    items = get(cluster, namespace, "pvc", "-l", NODE_SELECTOR)["items"]
    return {
        c["metadata"]["name"]: (c["spec"]["resources"]["requests"]["storage"],
                                (c.get("status") or {}).get("capacity", {}).get("storage", ""))
        for c in items
    }


def pod_uids(cluster: LocalCluster, namespace: str) -> dict[str, str]:
    pods = ready_pods(cluster, namespace, NODE_SELECTOR)
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}


def template_size(cluster: LocalCluster, namespace: str) -> str:
    template = get(cluster, namespace, "statefulset", "rec")["spec"]["volumeClaimTemplates"][0]
    return str(template["spec"]["resources"]["requests"]["storage"])


def test_volume_size_grows_on_a_running_cluster(
    local_cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster = local_cluster
    persistent = {"enabled": True, "volumeSize": "2Gi", "enablePersistentVolumeResize": True}
    apply(cluster, namespace, rec_manifest(persistentSpec=persistent))
    wait_state(cluster, namespace, "Running", timeout=480)
    assert set(claim_sizes(cluster, namespace).values()) == {("2Gi", "2Gi")}
    pods = pod_uids(cluster, namespace)

    apply(cluster, namespace, rec_manifest(persistentSpec={**persistent, "volumeSize": "3Gi"}))
    eventually("every node claim grown to 3Gi",
               lambda: set(claim_sizes(cluster, namespace).values()) == {("3Gi", "3Gi")},
               timeout=120, interval=1)
    eventually("the StatefulSet's claim template at 3Gi",
               lambda: template_size(cluster, namespace) == "3Gi", timeout=60)
    assert rec_status(cluster, namespace).get("state") == "Running"
    # the pods were kept (the StatefulSet is recreated with its pods orphaned, not restarted)
    assert pod_uids(cluster, namespace) == pods
    assert events(cluster, namespace, "VolumeResize")
    assert "Forbidden" not in operator.log()
