"""One REC and two REDBs for the whole admin CLI module, made as the REDB tests make theirs
(recluster.local.harness: the operator on the host with the RBAC of deploy/, a small REC): `admin-db`
(replicated, for failover and connect) and `admin-tls` (TLS, for connect). The CLI runs as the user
would run it: the `kubectl-recluster` entry point of this checkout with the cluster's admin
kubeconfig in KUBECONFIG and kubectl on PATH (for the exec tunnel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    apply_redb,
    eventually,
    kubectl,
    operator_namespace,
    rec_manifest,
    redb_manifest,
    redb_status,
    start_operator,
    strip_finalizers,
    wait_active,
    wait_state,
)

PLUGIN = Path(sys.executable).parent / "kubectl-recluster"
REPLICATED, TLS = "admin-db", "admin-tls"


@dataclass
class AdminEnv:
    cluster: LocalCluster
    namespace: str
    operator: OperatorProcess

    def env(self) -> dict[str, str]:
        path = f"{PLUGIN.parent}{os.pathsep}{self.cluster.kube_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig_path), "PATH": path}

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`kubectl-recluster -n <namespace> ARGS` as a user runs it."""
        result = subprocess.run([str(PLUGIN), "-n", self.namespace, *args], capture_output=True, text=True,
                                env=self.env(), timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl-recluster {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr[-3000:]}")
        return result

    def cli_json(self, *args: str) -> dict:  # type: ignore[type-arg]
        return dict(json.loads(self.cli(*args, "-o", "json").stdout))


@pytest.fixture(scope="module")
def admin_env(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    workdir = tmp_path_factory.mktemp("admin")
    with operator_namespace(local_cluster) as namespace:
        operator = start_operator(local_cluster, namespace, workdir)
        try:
            kubectl(local_cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(rec_manifest()))
            wait_state(local_cluster, namespace, "Running", timeout=900)
            assert apply_redb(local_cluster, namespace, redb_manifest(REPLICATED, replication=True)) == ""
            assert apply_redb(local_cluster, namespace, redb_manifest(TLS, tlsMode="enabled")) == ""
            for name, shards in ((REPLICATED, 2), (TLS, 1)):
                wait_active(local_cluster, namespace, name)
                eventually(f"{name}: {shards} shards active",
                           lambda name=name, shards=shards: redb_status(local_cluster, namespace, name)
                           .get("shardStatuses") == {"active": shards}, timeout=180)
            yield AdminEnv(local_cluster, namespace, operator)
        finally:
            kubectl(local_cluster, "-n", namespace, "delete", "redb", "--all", "--wait=false", check=False)
            operator.stop()
            strip_finalizers(local_cluster, namespace, "redb")
