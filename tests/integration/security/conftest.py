"""One real 3-node loopback cluster (node daemons, CCS, sentinels, shards) holding a replicated
database with a password, shared by the security tests that look at a running cluster: its
transport (test_node_transport.py), the files it writes and its processes (test_secret_files.py)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tests.integration.security.support import DB_NAME, SecuredCluster

from recluster.node.devcluster import LoopbackCluster


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecuredCluster]:
    if not shutil.which("redis-server") or not shutil.which("redis-sentinel"):  # pragma: no cover
        pytest.skip("needs redis-server and redis-sentinel")
    # replicas stay where they are while a test moves masters around
    cluster = LoopbackCluster(3, tmp_path_factory.mktemp("security"), replica_move_grace_s=600.0)
    # random, and long enough that finding it anywhere is no accident
    secured = SecuredCluster(cluster, db_password="db-" + secrets.token_urlsafe(24))
    try:
        await cluster.start(timeout_s=180)
        await cluster.wait_ready(timeout_s=120)
        async with cluster.api(1) as api:  # through a follower: the write is forwarded to the leader
            bdb = await api.create_bdb({
                "name": DB_NAME, "memory_size": 32 * 1024 * 1024, "replication": True,
                "data_persistence": "aof", "authentication_redis_pass": secured.db_password})
            secured.bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        yield secured
    finally:
        cluster.stop()
        assert cluster.leftover_pids() == [], "processes left behind after teardown"
