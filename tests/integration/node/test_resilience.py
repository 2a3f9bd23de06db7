"""Node failures and membership changes: restart after SIGKILL, majority loss, node removal."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.sentinel import Sentinel

from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def leader_index(cluster: LoopbackCluster, ask: int) -> int:
    async with cluster.api(ask) as api:
        uid = (await api.cluster())["master_node"]
    return int(uid) - 1


async def test_killed_node_restarts_and_rejoins_by_itself(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(3)
    victim = await leader_index(cluster, 0)  # the hardest case: the leader itself
    cluster.kill_node(victim)
    other = (victim + 1) % 3
    deadline = time.monotonic() + 90
    while await leader_index(cluster, other) == victim:  # the survivors elect a new CCS master
        assert time.monotonic() < deadline, "no new leader after the leader was killed"
        await asyncio.sleep(0.5)
    cluster.start_node(victim)
    await cluster.wait_ready([victim], timeout_s=120)
    async with cluster.api(victim) as api:
        nodes = await api.nodes()
        assert len(nodes) == 3
        deadline = time.monotonic() + 60
        while any(n["status"] != "active" for n in await api.nodes()):
            assert time.monotonic() < deadline, await api.nodes()
            await asyncio.sleep(0.5)
        # the restarted node takes writes again (forwarded to the new leader). Right after the leader
        # change the replicas may still be re-attaching to the new CCS master, and the cluster then
        # refuses a write with 503 cluster_no_quorum, as documented: a client retries a 503.
        deadline = time.monotonic() + 60
        while True:
            try:
                bdb = await api.create_bdb({"name": "after-restart", "memory_size": 16 * 1024 * 1024,
                                            "replication": True})
                break
            except ClusterApiError as exc:
                assert exc.error_code == "cluster_no_quorum" and time.monotonic() < deadline, str(exc)
                await asyncio.sleep(1)
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)


async def test_lost_majority_refuses_changes_then_recovers(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(3)
    survivor = 2
    for index in (0, 1):
        cluster.kill_node(index)
    async with cluster.api(survivor) as api:
        for call in (api.create_bdb({"name": "no-quorum", "memory_size": 1048576}),
                     api.put_license("text")):
            with pytest.raises(ClusterApiError) as refused:
                await call
            assert refused.value.status == 503
            assert refused.value.error_code == "cluster_no_quorum"
            assert "majority" in refused.value.body["message"]
        assert [b["name"] for b in await api.bdbs()] == []
    for index in (0, 1):
        cluster.start_node(index)
    await cluster.wait_ready(timeout_s=120)
    async with cluster.api(survivor) as api:
        deadline = time.monotonic() + 90
        while True:
            try:
                bdb = await api.create_bdb({"name": "quorum-back", "memory_size": 1048576 * 16})
                break
            except ClusterApiError as exc:
                assert exc.status == 503 and time.monotonic() < deadline, exc
                await asyncio.sleep(1)
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)


async def test_removing_a_node_with_masters_keeps_databases_and_data(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster: LoopbackCluster = await make_cluster(3)
    async with cluster.api(1) as api:
        specs = [{"name": "keep-repl", "memory_size": 32 * 1024 * 1024, "replication": True},
                 {"name": "keep-single", "memory_size": 32 * 1024 * 1024}]
        bdbs = [await api.create_bdb(spec) for spec in specs]
        bdbs = [await api.wait_bdb_status(b["uid"], timeout_s=120) for b in bdbs]
        sentinel = Sentinel(cluster.sentinels(), socket_timeout=1)
        for bdb in bdbs:
            client = sentinel.master_for(bdb["name"], socket_timeout=1)
            await asyncio.to_thread(lambda c=client: [c.set(f"key{i}", i) for i in range(100)])
        masters = {s["node_uid"] for s in await api.shards() if s["role"] == "master"}
        victim_uid = int(sorted(masters)[0])
        action = await api.remove_node(victim_uid)
        assert action["status"] in ("queued", "running")
        done = await api.wait_action(action["action_uid"], timeout_s=240)
        assert done["status"] == "completed", done
        assert victim_uid not in [n["uid"] for n in await api.nodes()]
        assert all(s["node_uid"] != str(victim_uid) for s in await api.shards())
        for bdb in bdbs:
            assert (await api.bdb(bdb["uid"]))["status"] == "active"
            client = sentinel.master_for(bdb["name"], socket_timeout=1)
            deadline = time.monotonic() + 60
            while True:
                try:
                    values = await asyncio.to_thread(client.mget, [f"key{i}" for i in range(100)])
                    await asyncio.to_thread(client.set, "written-after", 1)
                    break
                except redis.RedisError as exc:
                    assert time.monotonic() < deadline, exc
                    await asyncio.sleep(0.5)
            assert values == [str(i).encode() for i in range(100)]
        repl = await api.shards(bdbs[0]["uid"])
        assert sorted(s["role"] for s in repl) == ["master", "slave"]
        assert len({s["node_uid"] for s in repl}) == 2
