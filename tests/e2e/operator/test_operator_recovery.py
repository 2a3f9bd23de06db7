"""Recovery: every node pod of a REC with persistence is lost at once; the pods come back with new
IPs and their volumes, and the cluster returns to Running with its database and data."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from tests.e2e.local.support import apply
from tests.e2e.operator.test_operator_lifecycle import NODE_SELECTOR, _secret, cluster_nodes
from tests.e2e.operator.test_operator_scale_rolling import Writer

from recluster.clients.node_api import node_api
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    eventually,
    get,
    kubectl,
    ready_pods,
    rec_manifest,
    rec_status,
    wait_state,
)

pytestmark = pytest.mark.e2e

DB = "writes"  # the name the Writer looks up through Sentinel


def create_persistent_database(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    ca = _secret(cluster, namespace, "rec-tls", "ca.crt")
    username, password = (
        _secret(cluster, namespace, "rec", "username"),
        _secret(cluster, namespace, "rec", "password"),
    )
    pod = ready_pods(cluster, namespace, NODE_SELECTOR)[0]
    name = f"{pod['metadata']['name']}.rec.{namespace}.svc.cluster.local"

    async def create() -> dict[str, Any]:
        async with node_api(pod["status"]["podIP"], name, ca, username, password, timeout=30) as api:
            bdb = await api.create_bdb(
                {
                    "name": DB,
                    "memory_size": 64 * 1024 * 1024,
                    "replication": True,
                    "data_persistence": "aof",
                    "aof_policy": "appendfsync-always",
                }
            )
            return await api.wait_bdb_status(int(bdb["uid"]), "active", timeout_s=120)

    return asyncio.run(create())


def test_all_pods_lost_at_once_recover_with_their_data(
    local_cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster = local_cluster
    apply(cluster, namespace, rec_manifest(persistentSpec={"enabled": True, "volumeSize": "1Gi"}))
    wait_state(cluster, namespace, "Running", timeout=480)
    create_persistent_database(cluster, namespace)
    writer = Writer(cluster, namespace)
    writer.start()
    eventually("some confirmed writes", lambda: len(writer.confirmed) >= 20, timeout=60)
    writer.stopping.set()
    writer.join(timeout=30)
    confirmed = list(writer.confirmed)
    old_ips = {
        p["metadata"]["name"]: p["status"]["podIP"] for p in ready_pods(cluster, namespace, NODE_SELECTOR)
    }

    started = time.monotonic()
    kubectl(
        cluster,
        "-n",
        namespace,
        "delete",
        "pods",
        "-l",
        NODE_SELECTOR,
        "--grace-period=0",
        "--force",
        "--wait=false",
    )
    eventually(
        "the REC to notice the loss",
        lambda: rec_status(cluster, namespace).get("state") != "Running",
        timeout=120,
        interval=0.5,
    )
    wait_state(cluster, namespace, "Running", timeout=600)
    print(
        f"recovered to Running in {time.monotonic() - started:.1f}s; states seen end in "
        f"{rec_status(cluster, namespace).get('state')}"
    )

    # Running needs a majority of the nodes; the last pod may still be starting
    def all_ready() -> list[dict[str, Any]] | None:
        pods = ready_pods(cluster, namespace, NODE_SELECTOR)
        return pods if len(pods) == 3 else None

    ready = eventually("all three node pods ready again", all_ready, timeout=300, interval=2)
    new_ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in ready}
    assert set(new_ips) == set(old_ips) and len(new_ips) == 3
    assert sorted(n["name"] for n in cluster_nodes(cluster, namespace)) == [
        f"rec-{i}.rec.{namespace}.svc.cluster.local" for i in range(3)
    ]

    def readable() -> redis.Redis | None:
        try:
            return Writer(cluster, namespace).master()
        except (redis.RedisError, OSError):
            return None

    master = eventually("the database's master through Sentinel", readable, timeout=180)
    values = master.mget([f"k{i}" for i in confirmed])
    assert [i for i, v in zip(confirmed, values, strict=True) if v is None] == []
    events = [e["reason"] for e in get(cluster, namespace, "events")["items"]]
    assert "StatusChange" in events
