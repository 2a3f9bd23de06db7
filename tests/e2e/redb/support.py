"""Helpers of the REDB tests: manifests, status, the database secret, Services and their
endpoints, a Redis client through a Service address, writes that tell which server took them."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import redis
from tests.e2e.local.support import eventually, get, kubectl

from recluster.clients.write_probe import FailoverWrites, Server, probe_failover
from recluster.local.cluster import LocalCluster

NODE_SELECTOR = "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=node"


def redb_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": name},
        "spec": {"memorySize": "100MB", **spec},
    }


def apply_redb(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> str:
    """'' when stored, else kubectl's error (the admission's refusal)."""
    result = kubectl(cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(body), check=False)
    return result.stderr if result.returncode else ""


def redb_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    result = kubectl(cluster, "-n", namespace, "get", "redb", name, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    status: dict[str, Any] = json.loads(result.stdout).get("status") or {}
    return status


def wait_active(cluster: LocalCluster, namespace: str, name: str, timeout: float = 300) -> dict[str, Any]:
    def active() -> dict[str, Any] | None:
        status = redb_status(cluster, namespace, name)
        return status if status.get("status") == "active" and status.get("specStatus") == "Valid" else None

    result: dict[str, Any] = eventually(f"REDB {name} active", active, timeout=timeout)
    return result


def secret_data(cluster: LocalCluster, namespace: str, name: str) -> dict[str, str] | None:
    result = kubectl(cluster, "-n", namespace, "get", "secret", name, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    data = json.loads(result.stdout).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def service(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any] | None:
    result = kubectl(cluster, "-n", namespace, "get", "service", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def endpoint_ips(cluster: LocalCluster, namespace: str, service_name: str) -> set[str]:
    """Ready addresses of a Service's EndpointSlices."""
    slices = get(cluster, namespace, "endpointslices", "-l", f"kubernetes.io/service-name={service_name}")
    return {
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def node_pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"]
    return items


def labelled_pods(cluster: LocalCluster, namespace: str, uid: str) -> list[dict[str, Any]]:
    return [
        p
        for p in node_pods(cluster, namespace)
        if (p["metadata"].get("labels") or {}).get(f"redis.io/bdb-{uid}") == uid
        and not p["metadata"].get("deletionTimestamp")
    ]


def client(host: str, port: int, password: str | None) -> redis.Redis:
    return redis.Redis(
        host=host, port=port, password=password or None, socket_timeout=3, socket_connect_timeout=3
    )


# --- which server took a write: recluster.clients.write_probe ---------------------------------------


def write_until_new_master(
    host: str, port: int, password: str | None, old: Server, started: float, timeout: float
) -> FailoverWrites:
    """Write every 50 ms, each on a fresh connection, until a new master takes a write; fails the
    test after `timeout` s (also when only the old master kept taking writes)."""
    writes = probe_failover(host, port, password, old, started, "probe", timeout)
    if writes.first_new is None:
        pytest.fail(f"no write taken by a new master within {timeout:.0f} s: {writes.summary()}")
    return writes


def delete_redbs(cluster: LocalCluster, namespace: str) -> None:
    kubectl(cluster, "-n", namespace, "delete", "redb", "--all", "--wait=false", check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        result = kubectl(cluster, "-n", namespace, "get", "redb", "-o", "name", check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return
        time.sleep(1)
