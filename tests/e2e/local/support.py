"""Helpers for tests on the local cluster: kubectl with the admin kubeconfig and bounded waits."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from recluster.local.cluster import LocalCluster
from recluster.local.images import default_tag
from recluster.local.paths import repo_dir


def kubectl(
    cluster: LocalCluster, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = [str(cluster.kube_dir() / "kubectl"), "--kubeconfig", str(cluster.kubeconfig_path), *args]
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def apply(cluster: LocalCluster, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl(
        cluster,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )


def get(cluster: LocalCluster, namespace: str, *what: str) -> Any:
    return json.loads(kubectl(cluster, "-n", namespace, "get", *what, "-o", "json").stdout)


def eventually(what: str, check: Callable[[], Any], timeout: float = 90, interval: float = 0.5) -> Any:
    """Poll until `check` returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def ready_pods(cluster: LocalCluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    pods = get(cluster, namespace, "pods", "-l", selector)["items"]
    return [
        p
        for p in pods
        if p["metadata"].get("deletionTimestamp") is None
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def node_ready(cluster: LocalCluster, name: str) -> bool:
    node = json.loads(kubectl(cluster, "get", "node", name, "-o", "json").stdout)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


IMAGE = default_tag(Path(repo_dir()))  # the project image every node imported


@contextmanager
def temporary_namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kubectl(cluster, "create", "namespace", name)
    try:
        yield name
    finally:
        kubectl(cluster, "delete", "namespace", name, "--wait=false", check=False)
