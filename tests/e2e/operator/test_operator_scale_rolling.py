"""Scale 3 -> 5 -> 3 and a rolling resource change while a replicated database takes writes: the
writer finds the master through Sentinel, and no write that WAIT confirmed on a replica is lost."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from typing import Any

import pytest
import redis
from tests.e2e.local.support import apply
from tests.e2e.operator.test_operator_lifecycle import NODE_SELECTOR, _secret, cluster_nodes

from recluster.clients.node_api import node_api
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    HarnessError,
    OperatorProcess,
    eventually,
    get,
    kubectl,
    ready_pods,
    rec_manifest,
    rec_status,
)

pytestmark = pytest.mark.e2e

SENTINEL_PORT = 8001
DB = "writes"
# 5 nodes on 3 kubelets: node pods may share a host here (the default anti-affinity is required).
SPREAD = {
    "preferredDuringSchedulingIgnoredDuringExecution": [
        {
            "weight": 100,
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"redis.io/cluster": "rec", "redis.io/role": "node"}},
                "topologyKey": "kubernetes.io/hostname",
            },
        }
    ]
}


class Writer(threading.Thread):
    """SET k<i> then WAIT 1: a write counts as confirmed only when a replica has it."""

    def __init__(
        self, cluster: LocalCluster, namespace: str, db: str = DB, password: str | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.cluster, self.namespace, self.db, self.password = cluster, namespace, db, password
        self.stopping = threading.Event()
        self.confirmed: list[int] = []
        self.phases: list[tuple[int, str]] = [(0, "start")]  # (confirmed writes so far, phase begun)
        self.errors = 0
        self.last_ok = time.monotonic()
        self.longest_gap = 0.0
        self.longest_gap_phase = ""

    def master(self) -> redis.Redis:
        for pod in get(self.cluster, self.namespace, "pods", "-l", NODE_SELECTOR)["items"]:
            ip = pod.get("status", {}).get("podIP")
            if not ip:
                continue
            try:
                sentinel = redis.Redis(ip, SENTINEL_PORT, socket_timeout=2, socket_connect_timeout=2)
                host, port = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", self.db)
            except (redis.RedisError, TypeError, ValueError):
                continue
            address = host.decode()
            try:
                ipaddress.ip_address(address)
            except ValueError:
                resolved = self.cluster.resolve(address)
                if not resolved:
                    continue
                address = resolved[0]
            master = redis.Redis(
                address, int(port), password=self.password, socket_timeout=3, socket_connect_timeout=2
            )
            try:
                if master.execute_command("ROLE")[0] == b"master":
                    return master
            except redis.RedisError:
                continue
        raise redis.ConnectionError("no master found through Sentinel")

    def run(self) -> None:
        connection: redis.Redis | None = None
        i = 0
        while not self.stopping.is_set():
            try:
                if connection is None:
                    connection = self.master()
                connection.set(f"k{i}", i)
                if int(connection.execute_command("WAIT", 1, 2000)) >= 1:
                    self.confirmed.append(i)
                    now = time.monotonic()
                    if now - self.last_ok > self.longest_gap:
                        self.longest_gap, self.longest_gap_phase = now - self.last_ok, self.phases[-1][1]
                    self.last_ok = now
                i += 1
            except (redis.RedisError, OSError):
                self.errors += 1
                connection = None
                self.stopping.wait(0.3)
            self.stopping.wait(0.05)

    def mark(self, phase: str) -> None:
        self.phases.append((len(self.confirmed), phase))

    def phase_of(self, key: int) -> str:
        """The phase in which write `key` was confirmed (to tell when lost writes were made)."""
        position = self.confirmed.index(key)
        return [name for count, name in self.phases if count <= position][-1]

    def lost(self) -> list[int]:
        master = self.master()
        values = master.mget([f"k{i}" for i in self.confirmed]) if self.confirmed else []
        return [i for i, value in zip(self.confirmed, values, strict=True) if value is None]


def create_database(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    ca = _secret(cluster, namespace, "rec-tls", "ca.crt")
    username, password = (
        _secret(cluster, namespace, "rec", "username"),
        _secret(cluster, namespace, "rec", "password"),
    )
    pod = ready_pods(cluster, namespace, NODE_SELECTOR)[0]
    name = f"{pod['metadata']['name']}.rec.{namespace}.svc.cluster.local"

    async def create() -> dict[str, Any]:
        async with node_api(pod["status"]["podIP"], name, ca, username, password, timeout=30) as api:
            bdb = await api.create_bdb({"name": DB, "memory_size": 100 * 1024 * 1024, "replication": True})
            return await api.wait_bdb_status(int(bdb["uid"]), "active", timeout_s=120)

    return asyncio.run(create())


def _converged(cluster: LocalCluster, namespace: str, nodes: int) -> bool:
    status = rec_status(cluster, namespace)
    if status.get("state") != "Running" or status.get("readyNodes") != nodes:
        return False
    if any(c["type"] == "Progressing" and c["status"] == "True" for c in status.get("conditions", [])):
        return False
    sts = get(cluster, namespace, "statefulset", "rec")
    return bool(sts["spec"]["replicas"] == nodes and len(cluster_nodes(cluster, namespace)) == nodes)


def _wait_converged(cluster: LocalCluster, namespace: str, nodes: int, what: str) -> None:
    """Wait for the REC to run `nodes` nodes; on timeout, say where it stood."""
    try:
        eventually(what, lambda: _converged(cluster, namespace, nodes), timeout=480, interval=3)
    except HarnessError as exc:
        status = rec_status(cluster, namespace)
        conditions = {c["type"]: c.get("message") for c in status.get("conditions", [])}
        pods = [p["metadata"]["name"] for p in get(cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"]]
        pytest.fail(f"{exc}; REC state {status.get('state')}, conditions {conditions}, node pods {pods}")


def _patch(cluster: LocalCluster, namespace: str, patch: str) -> None:
    kubectl(cluster, "-n", namespace, "patch", "rec", "rec", "--type=merge", "-p", patch)


@pytest.mark.timeout(1800)
def test_scale_and_rolling_change_keep_a_database_writable(
    local_cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(local_cluster, namespace, rec_manifest(podAntiAffinity=SPREAD))
    _wait_converged(local_cluster, namespace, 3, "3 nodes Running")
    create_database(local_cluster, namespace)
    writer = Writer(local_cluster, namespace)
    writer.start()
    try:
        eventually("first confirmed writes", lambda: len(writer.confirmed) > 10, timeout=60)

        writer.mark("scale to 5")
        _patch(local_cluster, namespace, '{"spec":{"nodes":5}}')
        _wait_converged(local_cluster, namespace, 5, "5 nodes Running")
        writer.mark("scale to 3")
        _patch(local_cluster, namespace, '{"spec":{"nodes":3}}')
        _wait_converged(local_cluster, namespace, 3, "back to 3 nodes")
        eventually(
            "the removed pods gone",
            lambda: len(get(local_cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"]) == 3,
            timeout=180,
        )

        writer.mark("rolling change")
        before = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in ready_pods(local_cluster, namespace, NODE_SELECTOR)
        }
        _patch(
            local_cluster,
            namespace,
            '{"spec":{"redisEnterpriseNodeResources":{"requests":{"cpu":"100m","memory":"600Mi"},'
            '"limits":{"cpu":"1","memory":"1Gi"}}}}',
        )
        eventually(
            "the rolling change to start",
            lambda: rec_status(local_cluster, namespace).get("state") == "RunningRollingUpdate",
            timeout=60,
        )

        def rolled() -> bool:
            pods = ready_pods(local_cluster, namespace, NODE_SELECTOR)
            return (
                len(pods) == 3
                and all(before.get(p["metadata"]["name"]) != p["metadata"]["uid"] for p in pods)
                and all(
                    p["spec"]["containers"][0]["resources"]["requests"]["memory"] == "600Mi" for p in pods
                )
                and _converged(local_cluster, namespace, 3)
            )

        eventually("every pod restarted with the new resources", rolled, timeout=600, interval=3)
        writer.mark("after the rolling change")
        confirmed_before_end = len(writer.confirmed)
        eventually(
            "writes after the rolling change",
            lambda: len(writer.confirmed) > confirmed_before_end + 10,
            timeout=60,
        )
    finally:
        writer.stopping.set()
        writer.join(timeout=30)
    lost = writer.lost()
    print(
        f"confirmed writes {len(writer.confirmed)}, errors {writer.errors}, "
        f"longest gap {writer.longest_gap:.1f}s (during {writer.longest_gap_phase})"
    )
    assert lost == [], (
        f"{len(lost)} confirmed writes lost, e.g. {lost[:10]}, confirmed during "
        f"{sorted({writer.phase_of(k) for k in lost})}; phases {writer.phases}"
    )
    assert "Forbidden" not in operator.log()
