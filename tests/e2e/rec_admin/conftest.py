"""Two REDBs for the whole admin CLI module on the e2e tests' shared REC (tests/e2e/conftest.py):
`admin-db` (replicated, for failover and connect) and `admin-tls` (TLS, for connect). The CLI runs as the user
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
from tests.e2e.conftest import RedbEnv

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    apply_redb,
    eventually,
    kubectl,
    redb_manifest,
    redb_status,
    wait_active,
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
def admin_env(redb_env: RedbEnv) -> Iterator[AdminEnv]:
    """The admin CLI's two databases on the shared REC (tests/e2e/conftest.py), deleted at the end of
    the module."""
    cluster, namespace = redb_env.cluster, redb_env.namespace
    try:
        assert apply_redb(cluster, namespace, redb_manifest(REPLICATED, replication=True)) == ""
        assert apply_redb(cluster, namespace, redb_manifest(TLS, tlsMode="enabled")) == ""
        for name, shards in ((REPLICATED, 2), (TLS, 1)):
            wait_active(cluster, namespace, name)
            eventually(f"{name}: {shards} shards active",
                       lambda name=name, shards=shards: redb_status(cluster, namespace, name)
                       .get("shardStatuses") == {"active": shards}, timeout=180)
        yield AdminEnv(cluster, namespace, redb_env.operator)
    finally:
        kubectl(cluster, "-n", namespace, "delete", "redb", REPLICATED, TLS, "--ignore-not-found",
                "--timeout=180s", check=False)
