"""REDBs on a running REC: a replicated database reached through its `<db>` Service with the
secret's password, refusals naming the field, maxmemory changed in place, deletion of the database,
its Services and its secret (a secret the user made first stays)."""

from __future__ import annotations

import json

import pytest
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.support import client, endpoint_ips
from tests.integration.operator.support import events, exists, wait_gone

from recluster.local.harness import (
    apply_redb,
    eventually,
    kubectl,
    labelled_pods,
    redb_manifest,
    redb_status,
    secret_data,
    service,
    wait_active,
)

pytestmark = pytest.mark.e2e


def test_replicated_database_through_its_service_update_and_delete(redb_env: RedbEnv) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    assert apply_redb(cluster, ns, redb_manifest("db1", replication=True, evictionPolicy="allkeys-lru")) == ""
    status = wait_active(cluster, ns, "db1")
    uid, port = status["databaseUID"], status["internalEndpoints"][0]["port"]
    assert status["internalEndpoints"][0]["host"] == f"db1.{ns}.svc.cluster.local"
    assert status["redisEnterpriseCluster"] == "rec" and status["observedGeneration"] >= 1
    eventually(
        "both shards active", lambda: redb_status(cluster, ns, "db1").get("shardStatuses") == {"active": 2}
    )

    secret = eventually(
        "the secret with password, port and service_names",
        lambda: (lambda d: d if d and d.get("service_names") and d.get("port") else None)(
            secret_data(cluster, ns, "redb-db1")
        ),
        timeout=60,
    )
    assert secret["port"] == str(port) and secret["service_names"] == "db1,db1-headless"
    assert len(secret["password"]) >= 16

    svc = eventually("Service db1", lambda: service(cluster, ns, "db1"), timeout=60)
    assert svc["spec"]["ports"][0]["port"] == port
    headless = eventually("Service db1-headless", lambda: service(cluster, ns, "db1-headless"), timeout=60)
    assert headless["spec"]["clusterIP"] == "None"
    masters = eventually("one labelled master pod", lambda: labelled_pods(cluster, ns, uid), timeout=60)
    assert len(masters) == 1
    eventually(
        "the Service's endpoint at the master pod",
        lambda: endpoint_ips(cluster, ns, "db1") == {masters[0]["status"]["podIP"]},
        timeout=60,
    )

    address = svc["spec"]["clusterIP"]
    redis_client = client(address, port, secret["password"])
    assert redis_client.set("k", "v") and redis_client.get("k") == b"v"
    assert redis_client.execute_command("WAIT", 1, 5000) == 1  # the replica has it
    with pytest.raises(Exception, match=r"(?i)auth|password"):
        client(address, port, "wrong").ping()

    # an update changes maxmemory in place (same database, same data)
    kubectl(
        cluster, "-n", ns, "patch", "redb", "db1", "--type=merge", "-p", '{"spec":{"memorySize":"200MB"}}'
    )
    eventually(
        "maxmemory 200MB",
        lambda: (
            client(address, port, secret["password"]).config_get("maxmemory").get("maxmemory")
            == str(200 * 1024 * 1024)
        ),
        timeout=120,
    )
    assert client(address, port, secret["password"]).get("k") == b"v"
    assert any("memory_size" in e["message"] for e in events(cluster, ns, "Updated"))
    eventually("active again", lambda: redb_status(cluster, ns, "db1").get("status") == "active")

    # refusals naming the field, nothing stored
    error = apply_redb(cluster, ns, redb_manifest("bad", memorySize="10MB"))
    assert "spec.memorySize" in error and "denied" in error
    error = apply_redb(cluster, ns, redb_manifest("bad", evictionPolicy="sometimes"))
    assert "spec.evictionPolicy" in error
    error = apply_redb(cluster, ns, redb_manifest("bad", databasePort=port))
    assert "spec.databasePort" in error and "already used" in error
    error = apply_redb(cluster, ns, redb_manifest("bad", redisEnterpriseCluster={"name": "nope"}))
    assert "spec.redisEnterpriseCluster.name" in error
    assert not exists(cluster, ns, "redb", "bad")
    error = apply_redb(
        cluster, ns, redb_manifest("db1", replication=True, databasePort=port + 1, memorySize="200MB")
    )
    assert "spec.databasePort" in error and "cannot change" in error

    # deletion: database, Services, secret
    kubectl(cluster, "-n", ns, "delete", "redb", "db1", "--wait=false")
    wait_gone("REDB db1", lambda: exists(cluster, ns, "redb", "db1"), timeout=180)
    for kind, name in (("service", "db1"), ("service", "db1-headless"), ("secret", "redb-db1")):
        wait_gone(f"{kind}/{name}", lambda kind=kind, name=name: exists(cluster, ns, kind, name), timeout=120)
    wait_gone("the master label", lambda: labelled_pods(cluster, ns, uid), timeout=60)
    assert secret["password"] not in redb_env.operator.log()


def test_user_secret_is_used_and_kept(redb_env: RedbEnv) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    user_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "my-db2-secret"},
        "stringData": {"password": "user-chosen-pass-42"},
    }
    kubectl(cluster, "-n", ns, "apply", "-f", "-", input=json.dumps(user_secret))
    manifest = redb_manifest("db2", databaseSecretName="my-db2-secret", databasePort=12345)
    assert apply_redb(cluster, ns, manifest) == ""
    status = wait_active(cluster, ns, "db2")
    assert status["internalEndpoints"][0]["port"] == 12345
    data = eventually(
        "service_names in the user's secret",
        lambda: (lambda d: d if d and d.get("service_names") else None)(
            secret_data(cluster, ns, "my-db2-secret")
        ),
        timeout=60,
    )
    assert data["password"] == "user-chosen-pass-42" and data["port"] == "12345"
    svc = eventually("Service db2", lambda: service(cluster, ns, "db2"), timeout=60)
    eventually("db2's endpoint", lambda: endpoint_ips(cluster, ns, "db2"), timeout=60)

    def reachable() -> bool:
        try:
            return bool(client(svc["spec"]["clusterIP"], 12345, "user-chosen-pass-42").ping())
        except Exception:
            return False

    eventually("a PING through Service db2", reachable, timeout=30)

    kubectl(cluster, "-n", ns, "delete", "redb", "db2", "--wait=false")
    wait_gone("REDB db2", lambda: exists(cluster, ns, "redb", "db2"), timeout=180)
    wait_gone("Service db2", lambda: exists(cluster, ns, "service", "db2"), timeout=120)
    assert exists(cluster, ns, "secret", "my-db2-secret")
