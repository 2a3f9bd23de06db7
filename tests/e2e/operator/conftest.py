"""What the operator's e2e tests share: a namespace with the operator's RBAC from deploy/, and the
operator run on the host with exactly that RBAC (tests that deploy it as a pod do so themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recluster.local.cluster import LocalCluster
from recluster.local.harness import OperatorProcess, operator_namespace, start_operator


@pytest.fixture
def namespace(local_cluster: LocalCluster) -> Iterator[str]:
    with operator_namespace(local_cluster) as name:  # service account, Role, RoleBinding from deploy/
        yield name


@pytest.fixture
def operator(local_cluster: LocalCluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = start_operator(local_cluster, namespace, tmp_path)
    try:
        yield process
    finally:
        process.stop()
