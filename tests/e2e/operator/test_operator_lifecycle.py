"""A REC on the 3-node local cluster: bootstrap to Running checked through the REST API (with the
cluster's CA, verified), an operator killed in the middle of the bootstrap, deletion that keeps the
PVCs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.e2e.local.support import apply
from tests.integration.operator.support import events, exists, wait_gone

from recluster.api.rec import DEFAULT_SLAVE_HA_GRACE_PERIOD_S
from recluster.clients.cluster_api import ClusterApi
from recluster.clients.node_api import node_api
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    eventually,
    get,
    kubectl,
    ready_pods,
    rec_manifest,
    rec_status,
    start_operator,
    wait_state,
)

pytestmark = pytest.mark.e2e

NODE_SELECTOR = "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=node"
T = TypeVar("T")


def _secret(cluster: LocalCluster, namespace: str, name: str, key: str) -> str:
    return base64.b64decode(get(cluster, namespace, "secret", name)["data"][key]).decode()


def cluster_api(cluster: LocalCluster, namespace: str, call: Callable[[ClusterApi], Awaitable[T]]) -> T:
    """`call` on the REST API of the first ready node pod, trusting only the cluster's CA."""
    ca = _secret(cluster, namespace, "rec-tls", "ca.crt")
    username, password = (
        _secret(cluster, namespace, "rec", "username"),
        _secret(cluster, namespace, "rec", "password"),
    )
    pod = ready_pods(cluster, namespace, NODE_SELECTOR)[0]
    server_name = f"{pod['metadata']['name']}.rec.{namespace}.svc.cluster.local"

    async def fetch() -> T:
        async with node_api(pod["status"]["podIP"], server_name, ca, username, password) as api:
            return await call(api)

    return asyncio.run(fetch())


def cluster_nodes(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    return cluster_api(cluster, namespace, ClusterApi.nodes)


def test_bootstrap_survives_an_operator_restart_and_deletion_keeps_pvcs(
    local_cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    operator = start_operator(local_cluster, namespace, tmp_path, identity="op-1")
    try:
        apply(local_cluster, namespace, rec_manifest(persistentSpec={"enabled": True, "volumeSize": "2Gi"}))
        eventually(
            "the bootstrap to start",
            lambda: (
                rec_status(local_cluster, namespace).get("state") in ("BootstrappingFirstPod", "Initializing")
            ),
            timeout=240,
        )
        operator.stop(kill=True)  # mid-bootstrap, no clean exit: a new operator must pick it up
    finally:
        operator.stop()
    operator = start_operator(local_cluster, namespace, tmp_path, identity="op-2")
    try:
        wait_state(local_cluster, namespace, "Running", timeout=480)
        status = rec_status(local_cluster, namespace)
        assert status["readyNodes"] == 3 and status["specStatus"] == "Valid" and status["version"]
        nodes = cluster_nodes(local_cluster, namespace)
        assert sorted(n["name"] for n in nodes) == [
            f"rec-{i}.rec.{namespace}.svc.cluster.local" for i in range(3)
        ]
        # the node pods give up on a dead DNS server within a second (the kubelet wrote the pod's
        # dnsConfig into its resolv.conf)
        cat = kubectl(local_cluster, "-n", namespace, "exec", "rec-0", "--", "cat", "/etc/resolv.conf")
        resolv = cat.stdout
        options = next(line.split()[1:] for line in resolv.splitlines() if line.startswith("options"))
        assert {"timeout:1", "attempts:3"} <= set(options), resolv
        changes = [e["message"] for e in events(local_cluster, namespace, "StatusChange")]
        assert any("to Running" in m for m in changes)
        # the cluster policy follows slaveHA (its default when unset), also when the spec changes
        assert cluster_api(local_cluster, namespace, ClusterApi.policy) == {
            "slave_ha": True, "slave_ha_grace_period": DEFAULT_SLAVE_HA_GRACE_PERIOD_S}
        kubectl(local_cluster, "-n", namespace, "patch", "rec", "rec", "--type=merge",
                "-p", '{"spec": {"slaveHA": {"slaveHAGracePeriod": 45}}}')
        eventually(
            "the cluster policy to follow slaveHA.slaveHAGracePeriod",
            lambda: cluster_api(local_cluster, namespace, ClusterApi.policy)["slave_ha_grace_period"] == 45,
            timeout=120,
        )
        assert any("slave_ha_grace_period=45" in e["message"]
                   for e in events(local_cluster, namespace, "ClusterPolicy"))
        pvcs = [f"redis-enterprise-storage-rec-{i}" for i in range(3)]
        assert all(exists(local_cluster, namespace, "pvc", pvc) for pvc in pvcs)

        password = _secret(local_cluster, namespace, "rec", "password")
        kubectl(local_cluster, "-n", namespace, "delete", "rec", "rec", "--wait=false")
        wait_gone("the REC", lambda: exists(local_cluster, namespace, "rec", "rec"), timeout=300)
        for kind, name in (
            ("statefulset", "rec"),
            ("service", "rec"),
            ("secret", "rec"),
            ("deployment", "rec-services-rigger"),
        ):
            wait_gone(
                f"{kind}/{name}", lambda kind=kind, name=name: exists(local_cluster, namespace, kind, name)
            )
        wait_gone(
            "node pods",
            lambda: get(local_cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"],
            timeout=180,
        )
        assert all(exists(local_cluster, namespace, "pvc", pvc) for pvc in pvcs)

        # made again over the kept volumes: the nodes resume the old cluster and refuse the new
        # Secret's password; the REC says so and what to do, instead of waiting for ever
        apply(local_cluster, namespace, rec_manifest(persistentSpec={"enabled": True, "volumeSize": "2Gi"}))
        wait_state(local_cluster, namespace, "Error", timeout=300)

        def naming_every_claim() -> str | None:
            conditions = rec_status(local_cluster, namespace)["conditions"]
            message = str(next(c for c in conditions if c["type"] == "Ready")["message"])
            return message if all(pvc in message for pvc in pvcs) else None

        # the advice names every node's claim (the earlier REC's volumes are all of them), whichever
        # pod answered first
        message = eventually("the Error message to name every claim", naming_every_claim, timeout=60)
        assert "hold a cluster whose credentials are not those of Secret rec" in message, message
        assert events(local_cluster, namespace, "OtherCluster")
        kubectl(local_cluster, "-n", namespace, "delete", "rec", "rec", "--wait=false")
        wait_gone("the REC made again", lambda: exists(local_cluster, namespace, "rec", "rec"), timeout=300)
        log = operator.log()
        assert "Forbidden" not in log and password not in log
    finally:
        operator.stop()
