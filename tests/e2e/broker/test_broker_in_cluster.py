"""`serviceBrokerSpec.enabled: true` brings the broker up in the local cluster, a client reaches it
through its Service and provisions nothing it should not; disabling it removes the broker and keeps
its volume."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.local.support import apply
from tests.integration.operator.support import exists, wait_gone

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    eventually,
    get,
    operator_namespace,
    ready_pods,
    rec_manifest,
    start_operator,
    wait_state,
)

pytestmark = pytest.mark.e2e

BROKER = "rec-service-broker"


@pytest.fixture
def namespace(local_cluster: LocalCluster) -> Iterator[str]:
    with operator_namespace(local_cluster) as name:
        yield name


def secret(cluster: LocalCluster, namespace: str, key: str) -> str:
    return base64.b64decode(get(cluster, namespace, "secret", "rec")["data"][key]).decode()


def catalog(address: str, port: int, username: str, password: str) -> tuple[int, dict[str, Any]]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"http://{address}:{port}/v2/catalog",
        headers={"Authorization": f"Basic {token}", "X-Broker-API-Version": "2.17"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a cluster address
        return response.status, json.loads(response.read())


def test_broker_comes_up_behind_its_service_and_goes_away_keeping_its_volume(
    local_cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    cluster = local_cluster
    operator = start_operator(cluster, namespace, tmp_path)
    try:
        apply(cluster, namespace, rec_manifest(serviceBrokerSpec={"enabled": True}))
        wait_state(cluster, namespace, "Running", timeout=480)
        eventually(
            "the broker pod to be Ready",
            lambda: ready_pods(cluster, namespace, "redis.io/role=service-broker"),
            timeout=240,
        )
        service = get(cluster, namespace, "service", BROKER)
        address, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
        username, password = secret(cluster, namespace, "username"), secret(cluster, namespace, "password")

        def answered() -> tuple[int, dict[str, Any]] | None:
            try:
                return catalog(address, port, username, password)
            except OSError:
                return None

        status, body = eventually(f"the broker's catalog at {address}:{port}", answered, timeout=120)
        assert status == 200
        plans = [plan["name"] for svc in body["services"] for plan in svc["plans"]]
        assert {"small", "medium", "large"} <= set(plans)
        with pytest.raises(urllib.error.HTTPError) as refused:
            catalog(address, port, username, "not-the-password")
        assert refused.value.code == 401

        rec = get(cluster, namespace, "rec", "rec")
        rec["spec"]["serviceBrokerSpec"] = {"enabled": False}
        apply(
            cluster,
            namespace,
            {
                "apiVersion": rec["apiVersion"],
                "kind": rec["kind"],
                "metadata": {"name": "rec"},
                "spec": rec["spec"],
            },
        )
        wait_gone(
            "the broker Deployment", lambda: exists(cluster, namespace, "deployment", BROKER), timeout=120
        )
        wait_gone("the broker Service", lambda: exists(cluster, namespace, "service", BROKER), timeout=60)
        assert exists(cluster, namespace, "pvc", BROKER)
        assert password not in operator.log()
    finally:
        operator.stop()
