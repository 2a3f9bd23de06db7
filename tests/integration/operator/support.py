"""Running the operator on the host for tests: with exactly the RBAC of deploy/ (a kubeconfig made
from its ServiceAccount's token through the TokenRequest API), against the test run's cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.local.support import eventually, get, kubectl

from recluster.local.cluster import LocalCluster
from recluster.local.paths import repo_dir

REPO = Path(repo_dir())
DEPLOY = REPO / "deploy"
OPERATOR_SA = "redis-enterprise-operator"
# Small enough for the local nodes (2 CPUs each, CoreDNS on two of them).
SMALL_RESOURCES = {
    "redisEnterpriseNodeResources": {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    "redisEnterpriseServicesRiggerResources": {  # as examples/rec-persistent.yaml, and why
        "requests": {"cpu": "20m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    },
}


def rec_manifest(name: str = "rec", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1",
        "kind": "RedisEnterpriseCluster",
        "metadata": {"name": name},
        "spec": {"nodes": 3, **SMALL_RESOURCES, **spec},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_crds(cluster: LocalCluster) -> None:
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(DEPLOY / "crds"))
    for crd in ("redisenterpriseclusters", "redisenterprisedatabases"):
        kubectl(
            cluster, "wait", "--for=condition=Established", f"crd/{crd}.app.redislabs.com", "--timeout=60s"
        )


def install_rbac(cluster: LocalCluster, namespace: str) -> None:
    for name in ("service_account.yaml", "role.yaml", "role_binding.yaml"):
        kubectl(cluster, "-n", namespace, "apply", "-f", str(DEPLOY / name))


def operator_kubeconfig(
    cluster: LocalCluster, namespace: str, path: Path, account: str = OPERATOR_SA
) -> Path:
    """A kubeconfig holding only a ServiceAccount's token (TokenRequest API): the operator's unless
    `account` names another."""
    token = kubectl(cluster, "-n", namespace, "create", "token", account, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": "local", "user": account, "namespace": namespace}}
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    http_port: int
    namespace: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_operator(
    cluster: LocalCluster, namespace: str, workdir: Path, *, identity: str = "op-0", **env: str
) -> OperatorProcess:
    kubeconfig = operator_kubeconfig(cluster, namespace, workdir / f"kubeconfig-{identity}")
    http_port = free_port()
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "WATCH_NAMESPACE": namespace,
        "POD_NAMESPACE": namespace,
        "POD_NAME": identity,
        "OPERATOR_HTTP_HOST": "127.0.0.1",
        "OPERATOR_HTTP_PORT": str(http_port),
        "OPERATOR_RESYNC_SECONDS": "5",
        "OPERATOR_LEASE_SECONDS": "6",
        **env,
    }
    log_path = workdir / f"operator-{identity}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "recluster.cli", "operator", "--log-format", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPO,
        )
    operator = OperatorProcess(process, log_path, http_port, namespace)

    def healthy() -> bool:
        if not operator.alive():
            pytest.fail(f"the operator exited: {operator.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    eventually("the operator's /healthz", healthy, timeout=60)
    return operator


@contextmanager
def operator_namespace(cluster: LocalCluster) -> Iterator[str]:
    """A namespace with the operator's RBAC; deleted afterwards, finalizers stripped if the
    operator is gone."""
    ensure_crds(cluster)
    name = f"op-{uuid.uuid4().hex[:8]}"
    kubectl(cluster, "create", "namespace", name)
    try:
        install_rbac(cluster, name)
        yield name
    finally:
        strip_finalizers(cluster, name)
        # Node pods have an hour of termination grace; a test's leftovers must not hold a shared
        # 2-core cluster for that long.
        kubectl(
            cluster,
            "-n",
            name,
            "delete",
            "pods",
            "--all",
            "--grace-period=0",
            "--force",
            "--wait=false",
            check=False,
        )
        kubectl(cluster, "delete", "namespace", name, "--wait=false", check=False)


def strip_finalizers(cluster: LocalCluster, namespace: str) -> None:
    result = kubectl(cluster, "-n", namespace, "get", "rec", "-o", "json", check=False)
    if result.returncode != 0:
        return
    for item in json.loads(result.stdout).get("items", []):
        kubectl(
            cluster,
            "-n",
            namespace,
            "patch",
            "rec",
            item["metadata"]["name"],
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":[]}}',
            check=False,
        )


def rec_status(cluster: LocalCluster, namespace: str, name: str = "rec") -> dict[str, Any]:
    result = kubectl(cluster, "-n", namespace, "get", "rec", name, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    status: dict[str, Any] = json.loads(result.stdout).get("status") or {}
    return status


def wait_state(
    cluster: LocalCluster, namespace: str, state: str, timeout: float = 300, name: str = "rec"
) -> None:
    eventually(
        f"REC {name} state {state}",
        lambda: rec_status(cluster, namespace, name).get("state") == state,
        timeout=timeout,
    )


def events(cluster: LocalCluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "events")["items"]
    return [e for e in items if e.get("reason") == reason]


def exists(cluster: LocalCluster, namespace: str, kind: str, name: str) -> bool:
    return kubectl(cluster, "-n", namespace, "get", kind, name, check=False).returncode == 0


def wait_gone(what: str, check: Any, timeout: float = 120) -> None:
    eventually(what, lambda: not check(), timeout=timeout)


__all__ = ["time"]


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
