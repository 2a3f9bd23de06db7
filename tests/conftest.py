"""Shared fixtures. The local control plane is started once per test run, in a temporary state
directory and its own slot (bridge, addresses, ports), so it never collides with a cluster started by
`recluster local up`. Set RECLUSTER_TEST_CLUSTER=<state dir> to reuse a running cluster instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from rich.console import Console

from recluster.local.cluster import LocalCluster
from recluster.local.s3server import S3Endpoint


@pytest.fixture(scope="session")
def kube_dir() -> Path:
    from recluster.local.kubebuild import ensure_kube

    return ensure_kube(Console(stderr=True))


@pytest.fixture(scope="session")
def control_plane(kube_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    reuse = os.environ.get("RECLUSTER_TEST_CLUSTER")
    if reuse:
        cluster = LocalCluster.load(Path(reuse))
        if cluster is None or not cluster.ready():
            pytest.fail(f"RECLUSTER_TEST_CLUSTER={reuse} names no running local cluster")
        yield cluster
        return
    state = tmp_path_factory.mktemp("local-cluster")
    cluster = LocalCluster.create(state, name=f"rctest{os.getpid()}", fsync=False)
    try:
        cluster.up(Console(stderr=True), timeout=180)
        yield cluster
    finally:
        cluster.down(Console(stderr=True))
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def local_cluster(control_plane: LocalCluster) -> LocalCluster:
    """The test run's cluster with three nodes (kubelet, containerd, kube-proxy), DNS and add-ons."""
    control_plane.up(Console(stderr=True), timeout=240, nodes=3)
    return control_plane


@pytest.fixture
def kubectl(control_plane: LocalCluster, kube_dir: Path):  # type: ignore[no-untyped-def]
    """Run kubectl against the test cluster; returns the CompletedProcess (check=True by default)."""

    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kube_dir / "kubectl"), "--kubeconfig", str(control_plane.kubeconfig_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
            input=input,
        )

    return run


@pytest.fixture
async def api(control_plane: LocalCluster) -> AsyncIterator[k8s.ApiClient]:
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(control_plane.kubeconfig_path), client_configuration=configuration
    )
    async with k8s.ApiClient(configuration) as client:
        yield client


@pytest.fixture
async def namespace(api: k8s.ApiClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(api)
    await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        await core.delete_namespace(name)


@pytest.fixture(scope="session")
def s3_binary() -> Path:
    """The S3-compatible server of tools/s3, built from its Go module (cached like the others)."""
    from recluster.local.s3server import ensure_s3_server

    return ensure_s3_server(Console(stderr=True))


@pytest.fixture(scope="session")
def s3_server(s3_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A real S3 server on 127.0.0.1 (a free port) with bucket `recluster-backups` and random
    credentials, for the whole test run; stopped by its recorded pid at the end."""
    from recluster.local.s3server import start_s3_server, stop_s3_server

    state = tmp_path_factory.mktemp("s3")
    _, endpoint = start_s3_server(s3_binary, state)
    try:
        yield endpoint
    finally:
        stop_s3_server(state)
        shutil.rmtree(state, ignore_errors=True)
