"""The master's pod deleted: writes through the same `<db>` Service address succeed again, every
write WAIT confirmed before is there, and the master label and the Service's endpoints follow the new
master. (The node-stop case is test_redb_node_stop.py, run last: its node pod comes back slowly.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tests.e2e.local.support import eventually, kubectl, ready_pods
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.support import (
    NODE_SELECTOR,
    client,
    endpoint_ips,
    labelled_pods,
    redb_manifest,
    redb_status,
    secret_data,
    service,
    wait_active,
    write_until_ok,
)
from tests.integration.operator.support import exists, wait_gone, wait_state

from recluster.local.cluster import LocalCluster

pytestmark = pytest.mark.e2e


class Database:
    def __init__(self, env: RedbEnv, name: str) -> None:
        cluster, ns = env.cluster, env.namespace
        self.cluster, self.ns, self.name = cluster, ns, name
        status = wait_active(cluster, ns, name)
        eventually(
            "both shards active",
            lambda: redb_status(cluster, ns, name).get("shardStatuses") == {"active": 2},
            timeout=180,
        )
        self.uid = status["databaseUID"]
        self.port = int(status["internalEndpoints"][0]["port"])
        secret = eventually("the secret", lambda: secret_data(cluster, ns, f"redb-{name}"), timeout=60)
        self.password = secret["password"]
        svc = eventually(f"Service {name}", lambda: service(cluster, ns, name), timeout=60)
        self.address = svc["spec"]["clusterIP"]
        self.confirmed: list[str] = []

    def master_pod(self) -> dict:  # type: ignore[type-arg]
        pods = eventually(
            "one labelled master pod", lambda: labelled_pods(self.cluster, self.ns, self.uid), timeout=60
        )
        assert len(pods) == 1
        return pods[0]

    def write_confirmed(self, count: int) -> None:
        """Writes that WAIT confirmed on the replica."""
        connection = client(self.address, self.port, self.password)
        try:
            for _ in range(count):
                key = f"k{len(self.confirmed)}"
                connection.set(key, key)
                if connection.execute_command("WAIT", 1, 5000) >= 1:
                    self.confirmed.append(key)
        finally:
            connection.close()
        assert len(self.confirmed) >= count

    def check_after_failover(self, old_master: str, timeout: float) -> None:
        write_until_ok(self.address, self.port, self.password, "after-failover", timeout=timeout)
        connection = client(self.address, self.port, self.password)
        try:
            values = connection.mget(self.confirmed)
        finally:
            connection.close()
        lost = [key for key, value in zip(self.confirmed, values, strict=True) if value != key.encode()]
        assert lost == [], f"{len(lost)} confirmed writes lost"

        def label_moved() -> dict | None:  # type: ignore[type-arg]
            pods = labelled_pods(self.cluster, self.ns, self.uid)
            return pods[0] if len(pods) == 1 and pods[0]["metadata"]["name"] != old_master else None

        new_master = eventually("the label on the new master's pod", label_moved, timeout=60)
        eventually(
            "the Service's endpoint at the new master",
            lambda: endpoint_ips(self.cluster, self.ns, self.name) == {new_master["status"]["podIP"]},
            timeout=90,
        )
        info = client(self.address, self.port, self.password).info("replication")
        assert info["role"] == "master"


@pytest.fixture
def replicated_db(redb_env: RedbEnv) -> Iterator[Callable[[str], Database]]:
    names: list[str] = []

    def make(name: str) -> Database:
        names.append(name)
        body = redb_manifest(name, replication=True)
        from tests.e2e.redb.support import apply_redb

        assert apply_redb(redb_env.cluster, redb_env.namespace, body) == ""
        return Database(redb_env, name)

    yield make
    for name in names:
        kubectl(
            redb_env.cluster, "-n", redb_env.namespace, "delete", "redb", name, "--wait=false", check=False
        )
    for name in names:
        wait_gone(
            f"REDB {name}",
            lambda name=name: exists(redb_env.cluster, redb_env.namespace, "redb", name),
            timeout=180,
        )


def _cluster_healthy(cluster: LocalCluster, ns: str) -> None:
    eventually("three ready node pods", lambda: len(ready_pods(cluster, ns, NODE_SELECTOR)) == 3, timeout=600)
    wait_state(cluster, ns, "Running", timeout=600)


def test_master_pod_deleted(redb_env: RedbEnv, replicated_db: Callable[[str], Database]) -> None:
    db = replicated_db("fo1")
    db.write_confirmed(50)
    old = db.master_pod()["metadata"]["name"]
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "delete", "pod", old, "--wait=false")
    db.check_after_failover(old, timeout=120)
    _cluster_healthy(redb_env.cluster, redb_env.namespace)
