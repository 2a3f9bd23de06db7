"""The master's pod deleted: a *new* master (another redis-server run_id, role master) takes writes
through the same `<db>` Service address, every write WAIT confirmed before is read back from it, and
the master label and the Service's endpoints follow it. Writes the leaving master takes during its
hand-off do not count. (The node-stop case is test_redb_node_stop.py, run last: its node pod comes
back slowly.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.support import endpoint_ips, write_until_new_master
from tests.integration.operator.support import exists, wait_gone

from recluster.clients.write_probe import FailoverWrites, Server, connect, read_back
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    NODE_SELECTOR,
    eventually,
    kubectl,
    labelled_pods,
    ready_pods,
    redb_manifest,
    redb_status,
    secret_data,
    service,
    wait_active,
    wait_state,
)

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

    def whole(self) -> bool:
        """Two shards and the master (through the Service) with one replica online."""
        if redb_status(self.cluster, self.ns, self.name).get("shardStatuses") != {"active": 2}:
            return False
        try:
            connection = connect(self.address, self.port, self.password, timeout=3)
            try:
                info = connection.info("replication")
            finally:
                connection.close()
        except (redis.RedisError, OSError):
            return False
        online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        return info.get("role") == "master" and [r.get("state") for r in online] == ["online"]

    def write_confirmed(self, count: int) -> Server:
        """Writes that WAIT confirmed on the replica, through the Service; the server that took them
        (the master before the fault: its run_id is what "the old master" means below)."""
        pod = self.master_pod()
        connection = connect(self.address, self.port, self.password, timeout=8)
        try:
            role = connection.execute_command("ROLE")  # type: ignore[no-untyped-call]
            run_id = str(connection.info("server")["run_id"])
            for _ in range(count):
                key = f"k{len(self.confirmed)}"
                connection.set(key, key)
                if connection.execute_command("WAIT", 1, 5000) >= 1:  # type: ignore[no-untyped-call]
                    self.confirmed.append(key)
            announced = connection.config_get("replica-announce-ip")["replica-announce-ip"]
        finally:
            connection.close()
        assert len(self.confirmed) >= count
        assert role[0] in (b"master", "master")
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        assert announced == ip, f"the Service led to {announced}, the label is on {name} ({ip})"
        return Server(run_id, "master", ip)

    def check_after_failover(self, old: Server, started: float, timeout: float) -> FailoverWrites:
        """A write taken by a new master within `timeout` s of `started` (the fault), the confirmed
        writes on it, the label and the endpoints on its pod."""
        writes = write_until_new_master(self.address, self.port, self.password, old, started, timeout)
        print(f"{self.name}: {writes.summary()}")
        assert writes.first_new is not None
        new = writes.first_new.server
        assert new.run_id != old.run_id and new.role == "master"

        def on_new_master() -> tuple[Server, list[str]] | None:
            got = read_back(self.address, self.port, self.password, self.confirmed)
            return got if got and got[0].run_id != old.run_id and got[0].role == "master" else None

        reader, lost = eventually("the confirmed writes read on a new master", on_new_master, timeout=60)
        assert lost == [], f"{len(lost)} of {len(self.confirmed)} confirmed writes lost on {reader.addr}"

        def label_moved() -> dict | None:  # type: ignore[type-arg]
            pods = labelled_pods(self.cluster, self.ns, self.uid)
            return pods[0] if len(pods) == 1 and pods[0]["status"].get("podIP") == new.addr else None

        new_master = eventually(f"the label on the new master's pod ({new.addr})", label_moved, timeout=60)
        eventually(
            "the Service's endpoint at the new master",
            lambda: endpoint_ips(self.cluster, self.ns, self.name) == {new_master["status"]["podIP"]},
            timeout=90,
        )
        return writes


@pytest.fixture
def replicated_db(redb_env: RedbEnv) -> Iterator[Callable[..., Database]]:
    names: list[str] = []

    def make(name: str, **spec: object) -> Database:
        names.append(name)
        body = redb_manifest(name, replication=True, **spec)
        from recluster.local.harness import apply_redb

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
    old = db.write_confirmed(50)
    master = db.master_pod()["metadata"]["name"]  # write_confirmed checked it holds `old`
    started = time.monotonic()
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "delete", "pod", master, "--wait=false")
    db.check_after_failover(old, started, timeout=120)
    _cluster_healthy(redb_env.cluster, redb_env.namespace)
