"""Real node daemons, redis-server and redis-sentinel processes on loopback addresses.

One 3-node cluster is shared by the tests that do not break nodes; tests that kill nodes start their
own. Every cluster is torn down by the pids it recorded, and the teardown checks nothing is left."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from recluster.node.devcluster import LoopbackCluster

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

if not Path(REDIS_SERVER).exists():  # pragma: no cover - a machine without Redis cannot run these
    pytest.skip("redis-server is not installed", allow_module_level=True)


async def started_cluster(root: Path, size: int, **kwargs: object) -> LoopbackCluster:
    cluster = LoopbackCluster(size, root, **kwargs)  # type: ignore[arg-type]
    try:
        await cluster.start(timeout_s=180)
        await cluster.wait_ready(timeout_s=120)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def stop_and_check(cluster: LoopbackCluster) -> None:
    cluster.stop()
    assert cluster.leftover_pids() == [], "processes left behind after teardown"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def cluster3(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LoopbackCluster]:
    cluster = await started_cluster(tmp_path_factory.mktemp("cluster3"), 3)
    yield cluster
    stop_and_check(cluster)


@pytest_asyncio.fixture(loop_scope="session")
async def make_cluster(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Factory for a test's own cluster (for tests that kill or remove nodes)."""
    made: list[LoopbackCluster] = []

    async def make(size: int = 3, **kwargs: object) -> LoopbackCluster:
        cluster = await started_cluster(tmp_path / f"c{len(made)}", size, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        stop_and_check(cluster)
