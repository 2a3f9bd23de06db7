"""A snapshot taken through the replication protocol with only the replication login's commands is
a whole, loadable RDB of the shard's data at one instant, from a master or from a replica."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.backup.redis_servers import REPLICATION_PASSWORD, REPLICATION_USER, RedisServer

from recluster.clients.rdb_snapshot import SnapshotError, take_snapshot

pytestmark = pytest.mark.integration


def fill(server: RedisServer, count: int) -> None:
    client = server.client()
    for start in range(0, count, 5000):
        with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 5000, count)):
                pipe.set(f"key:{i}", f"value-{i}")
            pipe.execute()


async def test_snapshot_of_a_master_loads_with_every_key(redis_server: Callable[..., RedisServer],
                                                         tmp_path: Path) -> None:
    master = redis_server("master")
    fill(master, 20_000)
    master.client().hset("hash", mapping={"a": "1", "b": "2"})
    snapshot = await take_snapshot("127.0.0.1", master.port, tmp_path / "snap.rdb",
                                   username=REPLICATION_USER, password=REPLICATION_PASSWORD, limit=60)
    data = snapshot.path.read_bytes()
    assert (snapshot.size, snapshot.sha256, snapshot.rdb_version) == (
        len(data), hashlib.sha256(data).hexdigest(), 10)
    check = await asyncio.to_thread(subprocess.run, ["redis-check-rdb", str(snapshot.path)],
                                    capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    loaded = redis_server("loaded", seed=snapshot.path).client()
    assert loaded.dbsize() == 20_001
    assert loaded.get("key:19999") == b"value-19999" and loaded.hgetall("hash") == {b"a": b"1", b"b": b"2"}
    assert master.client().info("replication")["connected_slaves"] == 0  # it never became a replica


async def test_snapshot_of_an_in_sync_replica(redis_server: Callable[..., RedisServer],
                                              tmp_path: Path) -> None:
    master = redis_server("master")
    fill(master, 5_000)
    replica = redis_server("replica")
    admin = replica.client()
    admin.config_set("masteruser", REPLICATION_USER)
    admin.config_set("masterauth", REPLICATION_PASSWORD)
    admin.replicaof("127.0.0.1", master.port)
    deadline = time.monotonic() + 30
    while admin.info("replication").get("master_link_status") != "up" or admin.dbsize() != 5_000:
        assert time.monotonic() < deadline, "the replica did not sync within 30 s"
        await asyncio.sleep(0.1)
    forks_before = master.client().info("stats")["total_forks"]
    snapshot = await take_snapshot("127.0.0.1", replica.port, tmp_path / "replica.rdb",
                                   username=REPLICATION_USER, password=REPLICATION_PASSWORD, limit=60)
    assert redis_server("loaded", seed=snapshot.path).client().dbsize() == 5_000
    assert master.client().info("stats")["total_forks"] == forks_before  # the master did no work


async def test_a_refused_login_or_a_dead_shard_is_a_clear_error(redis_server: Callable[..., RedisServer],
                                                                tmp_path: Path) -> None:
    master = redis_server("master")
    refused = f"shard 127.0.0.1:{master.port} refused the login {REPLICATION_USER}"
    with pytest.raises(SnapshotError, match=refused):
        await take_snapshot("127.0.0.1", master.port, tmp_path / "x.rdb", username=REPLICATION_USER,
                            password="wrong", limit=10)
    master.process.terminate()
    master.process.wait(10)
    with pytest.raises(SnapshotError, match=f"the snapshot of shard 127.0.0.1:{master.port} failed"):
        await take_snapshot("127.0.0.1", master.port, tmp_path / "x.rdb", username=REPLICATION_USER,
                            password=REPLICATION_PASSWORD, limit=10)
    assert not (tmp_path / "x.rdb").exists()
