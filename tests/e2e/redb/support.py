"""Helpers of the REDB tests: manifests, status, the database secret, Services and their
endpoints, a Redis client through a Service address."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import redis
from tests.e2e.local.support import eventually, get, kubectl

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


def try_write(host: str, port: int, password: str | None, key: str, value: str) -> bool:
    """One write through a fresh connection; True when the database accepted it."""
    connection = client(host, port, password)
    try:
        return bool(connection.set(key, value))
    except (redis.RedisError, OSError):
        return False
    finally:
        connection.close()


def write_until_ok(host: str, port: int, password: str | None, key: str, timeout: float) -> float:
    """Seconds until a write succeeds (fails the test after `timeout`)."""
    started = time.monotonic()
    eventually(
        f"a write through {host}:{port}",
        lambda: try_write(host, port, password, key, "1"),
        timeout=timeout,
        interval=0.1,
    )
    return time.monotonic() - started


def delete_redbs(cluster: LocalCluster, namespace: str) -> None:
    kubectl(cluster, "-n", namespace, "delete", "redb", "--all", "--wait=false", check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        result = kubectl(cluster, "-n", namespace, "get", "redb", "-o", "name", check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return
        time.sleep(1)
