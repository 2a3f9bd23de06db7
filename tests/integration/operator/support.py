"""Helpers of the operator tests beside those the benchmarks share (recluster.local.harness: the
operator on the host with exactly the RBAC of deploy/, REC manifests and state): events, waits for
objects, the admission webhook served from the host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    DEPLOY,
    OperatorProcess,
    eventually,
    free_port,
    get,
    kubectl,
    start_operator,
)


def events(cluster: LocalCluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "events")["items"]
    return [e for e in items if e.get("reason") == reason]


def exists(cluster: LocalCluster, namespace: str, kind: str, name: str) -> bool:
    return kubectl(cluster, "-n", namespace, "get", kind, name, check=False).returncode == 0


def wait_gone(what: str, check: Any, timeout: float = 120) -> None:
    eventually(what, lambda: not check(), timeout=timeout)


def webhook_objects(namespace: str, port: int, name: str) -> list[dict[str, Any]]:
    """deploy/admission/*.yaml for this namespace, the configuration and its ClusterRole(Binding)
    named after `name` (so a test's own cannot clash with another's), and the webhook calling the
    operator on the host (a URL instead of the in-cluster Service, which a host-run operator is not
    behind)."""
    role = list(
        yaml.safe_load_all(
            (DEPLOY / "admission" / "role.yaml").read_text().replace("OPERATOR_NAMESPACE", namespace)
        )
    )
    config = yaml.safe_load(
        (DEPLOY / "admission" / "webhook.yaml").read_text().replace("OPERATOR_NAMESPACE", namespace)
    )
    config["metadata"]["name"] = name
    cluster_role, binding = role
    role_name = f"{name}-webhook"
    cluster_role["metadata"]["name"] = binding["metadata"]["name"] = binding["roleRef"]["name"] = role_name
    cluster_role["rules"][0]["resourceNames"] = [name]
    for hook in config["webhooks"]:
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{hook['clientConfig']['service']['path']}"}
    return [cluster_role, binding, config]


@contextmanager
def webhook_operator(
    cluster: LocalCluster, namespace: str, workdir: Path, configuration: str
) -> Iterator[tuple[OperatorProcess, list[dict[str, Any]]]]:
    """The operator serving its webhook on the host, behind the configuration `configuration`
    (webhook_objects, applied first); the operator and those objects, removed afterwards."""
    port = free_port()
    objects = webhook_objects(namespace, port, configuration)
    listing = {"apiVersion": "v1", "kind": "List", "items": objects}
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(listing))
    operator = start_operator(
        cluster,
        namespace,
        workdir,
        OPERATOR_WEBHOOK_PORT=str(port),
        OPERATOR_WEBHOOK_HOST="127.0.0.1",
        OPERATOR_WEBHOOK_NAMES="127.0.0.1",
        OPERATOR_WEBHOOK_CONFIGURATION=configuration,
    )
    try:
        yield operator, objects
    finally:
        operator.stop()
        for obj in reversed(objects):
            kind, name = obj["kind"].lower(), obj["metadata"]["name"]
            kubectl(cluster, "delete", kind, name, "--wait=false", check=False)
