"""A database made by an older version (no per-job users: replication, Sentinel and the probes log in
as its default user) moves to the per-job logins while it runs, on a real loopback cluster: the record
is written into the cluster state as an older leader wrote it, its shards start the old way, then the
leader adds the users to every shard and only after moves the logins. A writer confirmed by WAIT
runs throughout; the master never moves (no sentinel ever saw it down) and nothing is lost."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import redis
from redis.sentinel import Sentinel

from recluster.node.ccs import CcsStore, NotLeader
from recluster.node.config import NodeConfig
from recluster.node.devcluster import LoopbackCluster
from recluster.node.placement import PlacedShard, place_new_bdb
from recluster.node.records import BdbRecord, ClusterState, ShardRecord
from recluster.node.validation import free_port

pytestmark = pytest.mark.integration

NAME, PASSWORD = "older-db", "older-db-password"


async def leader_store(cluster: LoopbackCluster) -> CcsStore:
    ccs_password = json.loads(
        (cluster.nodes[0].data_dir / "membership.json").read_text())["ccs_password"]
    for node in cluster.nodes:
        store = CcsStore(NodeConfig(addr=node.addr, data_dir=node.data_dir, ccs_port=cluster.ccs_port),
                         ccs_password)
        if await store.is_master():
            return store
        await store.close()
    raise AssertionError("no node's CCS is master")


def add_older_database(state: ClusterState) -> int:
    """What an older leader's create_bdb stored: no internal password."""
    uid = max([*state.bdbs, state.next_uid.get("bdb", 1) - 1]) + 1
    port = free_port(state)
    assert port is not None
    bdb = BdbRecord(uid=uid, name=NAME, memory_size=32 << 20, port=port, replication=True,
                    data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                    eviction_policy="volatile-lru", authentication_redis_pass=PASSWORD, status="pending")
    nodes = [n.uid for n in state.nodes.values() if n.status == "active"]
    placed = [PlacedShard(s.uid, s.bdb_uid, s.node_uid, s.role) for s in state.shards.values()]
    state.bdbs[uid] = bdb
    state.next_uid["bdb"] = max(state.next_uid.get("bdb", 1), uid + 1)
    for add in place_new_bdb(uid, nodes, placed, True):
        shard_uid = state.allocate("shard")
        state.shards[shard_uid] = ShardRecord(uid=shard_uid, bdb_uid=uid, node_uid=add.node_uid,
                                              role="master" if add.role == "master" else "slave")
    return uid


async def bdb_record(store: CcsStore, uid: int) -> BdbRecord:
    state = await store.read_local()
    assert state is not None
    return state.bdbs[uid]


async def test_an_older_database_moves_to_the_per_job_logins_without_a_failover(
        cluster3: LoopbackCluster) -> None:
    store = await leader_store(cluster3)
    try:
        await migrate_and_check(cluster3, store)
    finally:
        await store.close()


async def migrate_and_check(cluster3: LoopbackCluster, store: CcsStore) -> None:
    try:
        uid = await store.write(add_older_database, "add a database as an older version did")
    except NotLeader:
        pytest.fail("the leader changed while the test wrote")
    sentinel = Sentinel(cluster3.sentinels(), socket_timeout=1.0)
    master = sentinel.master_for(NAME, password=PASSWORD, socket_timeout=2.0)

    # the writer starts at once: while the shards start the old way its errors do not count; from its
    # first confirmed write on, every error does
    confirmed: list[int] = []
    errors: list[tuple[float, str]] = []
    first_confirmed_at: list[float] = []
    link_cut_at: list[float] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            try:
                master.set(f"k{i}", i)
                if master.execute_command("WAIT", 1, 2000) >= 1:
                    confirmed.append(i)
                    first_confirmed_at[:] = first_confirmed_at or [time.monotonic()]
            except redis.RedisError as exc:
                if confirmed:
                    errors.append((time.monotonic(), str(exc)))
                else:
                    time.sleep(0.1)
            i += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 120
        while not confirmed:
            assert time.monotonic() < deadline, "the older database never took a confirmed write"
            await asyncio.sleep(0.2)
        first_master = sentinel.discover_master(NAME)
        run_id = master.info("server")["run_id"]
        deadline = time.monotonic() + 60
        while True:
            bdb = await bdb_record(store, uid)
            if bdb.internal_password and bdb.internal_logins:
                switched_at = time.monotonic()
                break
            assert time.monotonic() < deadline, f"the logins did not move: {bdb.internal_logins=}"
            await asyncio.sleep(0.3)

        # a replica keeps the link it has (a new link would cost a resync); its next one logs in as the
        # replication user: once its node has set that (CONFIG SET masteruser), cut the link and see
        (host, port), = sentinel.discover_slaves(NAME)
        replica_shard = redis.Redis(host, port, password=PASSWORD, socket_timeout=2.0, decode_responses=True)
        deadline = time.monotonic() + 30
        while replica_shard.config_get("masteruser").get("masteruser") != "recluster-replication":
            assert time.monotonic() < deadline, "the replica's node did not move its masteruser"
            await asyncio.sleep(0.2)
        replica = next(c for c in master.client_list() if "S" in c["flags"])
        link_cut_at.append(time.monotonic())
        assert master.execute_command("CLIENT", "KILL", "ID", replica["id"]) == 1

        async def every_job_logged_in() -> bool:
            clients = master.client_list()
            links = [c for c in clients if "S" in c["flags"]]
            users = {c["user"] for c in clients}
            return bool(links) and all(c["user"] == "recluster-replication" for c in links) and \
                {"recluster-sentinel", "recluster-internal"} <= users

        deadline = time.monotonic() + 30
        while not await every_job_logged_in():
            assert time.monotonic() < deadline, f"not every job logs in as its user: {master.client_list()}"
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # longer than the sentinels' down-after period: a refused login would show
    finally:
        stop.set()
        writer.join(10)

    assert sentinel.discover_master(NAME) == first_master, "the master moved during the migration"
    assert master.info("server")["run_id"] == run_id
    # the only refusals: the master's own (min-replicas-to-write) while the test had cut its replica's
    # link; none while the logins moved
    before_cut = [e for e in errors if not link_cut_at or e[0] < link_cut_at[0]]
    assert not before_cut, before_cut[:5]
    assert all("NOREPLICAS" in message for _, message in errors), errors[:5]
    assert len(confirmed) > 10, len(confirmed)
    missing = [i for i in confirmed if master.get(f"k{i}") != str(i).encode()]
    assert not missing, f"{len(missing)} WAIT-confirmed writes lost"
    print(f"login migration: logins moved {switched_at - first_confirmed_at[0]:.1f} s after the first "
          f"confirmed write; {len(confirmed)} writes confirmed, none lost, no failover")

    async with cluster3.api(0) as api:
        await api.delete_bdb(uid)
