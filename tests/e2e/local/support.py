"""Helpers for tests on the local cluster beside those the benchmarks share (recluster.local.harness:
kubectl with the admin kubeconfig, bounded waits, the operator on the host)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recluster.local.cluster import LocalCluster
from recluster.local.harness import kubectl
from recluster.local.images import default_tag
from recluster.local.paths import repo_dir


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
