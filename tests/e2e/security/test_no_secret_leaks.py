"""No secret value in logs, events, statuses or process arguments. A realistic run: the operator
installed from deploy/bundle.yaml as a pod, a REC with the service broker, a replicated REDB, a
failover; then every secret value the product holds (REC credentials, database password, broker
credentials, private keys) is searched for in every container's log, every event, the objects'
specs and statuses, ConfigMaps, and the command lines and environments of every process on the
machine. The test reports where a value was found, never the value."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.e2e.local.support import IMAGE

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    eventually,
    get,
    kubectl,
    operator_namespace,
    ready_pods,
    rec_manifest,
    wait_state,
)
from recluster.local.paths import repo_dir

pytestmark = pytest.mark.e2e

BUNDLE = Path(repo_dir()) / "deploy" / "bundle.yaml"
NODE_SELECTOR = "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=node"
BROKER_SELECTOR = "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=service-broker"
MIN_SECRET_LENGTH = 8  # shorter values (ports, "true") are not secrets and would match by chance


@pytest.fixture
def namespace(local_cluster: LocalCluster) -> Iterator[str]:
    with operator_namespace(local_cluster) as name:
        yield name


def install_operator(cluster: LocalCluster, namespace: str) -> None:
    objects = [doc for doc in yaml.safe_load_all(BUNDLE.read_text()) if doc]
    for obj in objects:
        if obj["kind"] == "Deployment":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["image"] = IMAGE  # this checkout's image, which every node imported
            container["resources"]["requests"] = {"cpu": "50m", "memory": "128Mi"}
    kubectl(cluster, "-n", namespace, "apply", "--server-side", "--force-conflicts", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def secret_values(cluster: LocalCluster, namespace: str) -> dict[str, str]:
    """'secret/key' -> value, for every value of the namespace's Secrets that is a secret (not the
    public certificates, not short values such as ports)."""
    found: dict[str, str] = {}
    for item in get(cluster, namespace, "secrets")["items"]:
        if item["type"] == "kubernetes.io/service-account-token":
            continue
        for key, encoded in (item.get("data") or {}).items():
            value = base64.b64decode(encoded).decode(errors="replace")
            if key.endswith(".crt") or key in ("port", "service_names", "username") or "CERTIFICATE" in value:
                continue
            if len(value) >= MIN_SECRET_LENGTH:
                found[f"{item['metadata']['name']}/{key}"] = value
    return found


def haystacks(cluster: LocalCluster, namespace: str) -> Iterator[tuple[str, str]]:
    """(where, text) of everything that must hold no secret."""
    for pod in get(cluster, namespace, "pods")["items"]:
        name = pod["metadata"]["name"]
        for status in pod["status"].get("containerStatuses") or []:
            container = status["name"]
            yield (f"log of {name}/{container}",
                   kubectl(cluster, "-n", namespace, "logs", name, "-c", container, check=False).stdout)
            if status.get("restartCount"):
                yield (f"previous log of {name}/{container}",
                       kubectl(cluster, "-n", namespace, "logs", name, "-c", container, "--previous",
                               check=False).stdout)
    yield "events", json.dumps(get(cluster, namespace, "events"))
    for kind in ("rec", "redb", "pods", "statefulsets", "deployments", "services", "configmaps",
                 "persistentvolumeclaims", "leases", "poddisruptionbudgets"):
        yield f"{kind} (spec, status, annotations)", json.dumps(get(cluster, namespace, kind))
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                text = (proc / part).read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # the process ended meanwhile
            yield f"/proc/{proc.name}/{part}", text


def test_no_secret_value_in_logs_events_statuses_or_process_arguments(
    local_cluster: LocalCluster, namespace: str
) -> None:
    cluster = local_cluster
    install_operator(cluster, namespace)
    rec = rec_manifest(serviceBrokerSpec={"enabled": True})
    kubectl(cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(rec))
    wait_state(cluster, namespace, "Running", timeout=480)
    redb = {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": "leaks"},
        "spec": {"redisEnterpriseCluster": {"name": "rec"}, "memorySize": "100MB", "replication": True},
    }
    kubectl(cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(redb))

    def redb_active() -> bool:
        return (get(cluster, namespace, "redb", "leaks").get("status") or {}).get("status") == "active"

    eventually("the REDB active", redb_active, timeout=240, interval=2)
    eventually("the broker ready", lambda: ready_pods(cluster, namespace, BROKER_SELECTOR), timeout=240,
               interval=2)

    # a node pod goes (graceful: it hands its masters over); the cluster recovers
    victim = ready_pods(cluster, namespace, NODE_SELECTOR)[0]["metadata"]
    kubectl(cluster, "-n", namespace, "delete", "pod", victim["name"], "--wait=false")

    def replaced() -> bool:
        pods = ready_pods(cluster, namespace, NODE_SELECTOR)
        return any(p["metadata"]["name"] == victim["name"] and p["metadata"]["uid"] != victim["uid"]
                   for p in pods)

    eventually("the node pod replaced and ready", replaced, timeout=300, interval=2)
    wait_state(cluster, namespace, "Running", timeout=480)
    eventually("the REDB active again", redb_active, timeout=240, interval=2)

    secrets = secret_values(cluster, namespace)
    names = {key.split("/")[0] for key in secrets}
    # the product's secrets are all there to look for: REC credentials, its TLS key, the database's
    assert {"rec", "rec-tls", "redb-leaks"} <= names, sorted(names)
    leaks: list[str] = []
    searched = 0
    for where, text in haystacks(cluster, namespace):
        searched += len(text)
        leaks += [f"{key} in {where}" for key, value in secrets.items() if value in text]
    print(f"searched {searched} characters for {len(secrets)} secret values ({', '.join(sorted(secrets))})")
    assert leaks == []
