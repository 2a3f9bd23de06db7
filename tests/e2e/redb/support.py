"""Helpers of the REDB tests beside those the benchmarks share (recluster.local.harness: manifests,
status, the database secret, Services, the labelled master pod): Services' endpoints, a Redis client
through a Service address, writes that tell which server took them."""

from __future__ import annotations

import time

import pytest
import redis

from recluster.clients.write_probe import FailoverWrites, Server, probe_failover
from recluster.local.cluster import LocalCluster
from recluster.local.harness import get, kubectl


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
