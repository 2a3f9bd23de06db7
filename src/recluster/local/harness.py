"""Driving a local cluster from the host, for the end-to-end tests and the benchmarks (`bench/`) alike:
kubectl with the admin kubeconfig and bounded waits, the operator run on the host with exactly the
RBAC of deploy/ (a kubeconfig made from its ServiceAccount's token through the TokenRequest API), and
the REC and REDB manifests and status the two read. A wait that runs out raises HarnessError (an
AssertionError: a failed test, a stopped benchmark) naming what it waited for."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recluster.api import rec, redb
from recluster.api.common import GROUP
from recluster.api.naming import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL, bdb_label
from recluster.local.cluster import LocalCluster
from recluster.local.paths import repo_dir

REPO = Path(repo_dir())
DEPLOY = REPO / "deploy"
OPERATOR_SA = "redis-enterprise-operator"
NODE_SELECTOR = f"{APP_LABEL}={APP},{CLUSTER_LABEL}=rec,{ROLE_LABEL}={NODE_ROLE}"  # the nodes of REC `rec`
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


class HarnessError(AssertionError):
    """What the cluster did not do (in time): fails the test or stops the benchmark that waited."""


# --- kubectl and waits ------------------------------------------------------------------------------


def kubectl(
    cluster: LocalCluster, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = [str(cluster.kube_dir() / "kubectl"), "--kubeconfig", str(cluster.kubeconfig_path), *args]
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise HarnessError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def get(cluster: LocalCluster, namespace: str, *what: str) -> Any:
    return json.loads(kubectl(cluster, "-n", namespace, "get", *what, "-o", "json").stdout)


def eventually(what: str, check: Callable[[], Any], timeout: float = 90, interval: float = 0.5) -> Any:
    """Poll until `check` returns something truthy; HarnessError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def ready_pods(cluster: LocalCluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    pods = get(cluster, namespace, "pods", "-l", selector)["items"]
    return [
        p
        for p in pods
        if p["metadata"].get("deletionTimestamp") is None
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


# --- REC and REDB -----------------------------------------------------------------------------------


def rec_manifest(name: str = "rec", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": rec.API_VERSION,
        "kind": rec.KIND,
        "metadata": {"name": name},
        "spec": {"nodes": 3, **SMALL_RESOURCES, **spec},
    }


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


def redb_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": redb.API_VERSION,
        "kind": redb.KIND,
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


def node_pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"]
    return items


def labelled_pods(cluster: LocalCluster, namespace: str, uid: str) -> list[dict[str, Any]]:
    """The node pods the rigger labelled as holding database `uid`'s master."""
    return [
        p
        for p in node_pods(cluster, namespace)
        if (p["metadata"].get("labels") or {}).get(bdb_label(uid)) == uid
        and not p["metadata"].get("deletionTimestamp")
    ]


# --- the operator on the host -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_crds(cluster: LocalCluster) -> None:
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(DEPLOY / "crds"))
    for plural in (rec.PLURAL, redb.PLURAL):
        kubectl(cluster, "wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=60s")


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

    def ready(self) -> tuple[int, dict[str, Any]]:
        """/readyz: (status, body); 200 once this replica leads and serves the webhook, 503 before."""
        request = f"http://127.0.0.1:{self.http_port}/readyz"
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

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
            raise HarnessError(f"the operator exited: {operator.log()[-3000:]}")
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
        # Node pods have an hour of termination grace; leftovers must not hold a shared 2-core
        # cluster for that long.
        kubectl(
            cluster, "-n", name, "delete", "pods", "--all", "--grace-period=0", "--force", "--wait=false",
            check=False,
        )
        kubectl(cluster, "delete", "namespace", name, "--wait=false", check=False)


def strip_finalizers(cluster: LocalCluster, namespace: str, resource: str = "rec") -> None:
    """Every `resource` object (rec, redb) of the namespace without finalizers, so a namespace whose
    operator is gone can be deleted."""
    result = kubectl(cluster, "-n", namespace, "get", resource, "-o", "json", check=False)
    if result.returncode != 0:
        return
    for item in json.loads(result.stdout).get("items", []):
        kubectl(
            cluster, "-n", namespace, "patch", resource, item["metadata"]["name"], "--type=merge",
            "-p", '{"metadata":{"finalizers":[]}}', check=False,
        )
