"""What the leader sees before it decides (recluster.node.reconcile decides): which nodes answer and
since when one does not, which of those may keep their replicas (an announced restart), what the
sentinels name as masters, what every shard answers (alive, in sync, configured as placed), the
addresses nodes announced and confirmed, which pending databases every sentinel is ready to fail
over, and which deleted databases' ports closed everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import time

from redis.exceptions import RedisError

from recluster.node.addresses import AddressWatch
from recluster.node.ccs import CcsStore
from recluster.node.engines import engine_of_info
from recluster.node.placement import nodes_to_evacuate
from recluster.node.probes import port_closed
from recluster.node.reconcile import Observation
from recluster.node.records import ClusterState, NodeRecord
from recluster.node.runtime import NodeRuntime
from recluster.node.sentinel import failover_armed
from recluster.node.shards import memory_settings

PROBES_IN_FLIGHT = 16


class Observer:
    def __init__(self, rt: NodeRuntime) -> None:
        self.rt = rt
        self.cfg = rt.cfg
        self._down_since: dict[int, float] = {}
        self._pending_since: dict[int, float] = {}
        self._addresses = AddressWatch()

    def cancel(self) -> None:
        self._addresses.cancel()

    async def observe(self, store: CcsStore, state: ClusterState) -> Observation:
        now = time.monotonic()
        nodes = list(state.nodes.values())
        up = await self._nodes_up(store, nodes)
        evacuate_down = await self._nodes_to_evacuate(store, state, nodes, up, now)
        masters: dict[str, tuple[str, int]] = {}
        for name, entry in (await self.rt.sentinel.masters()).items():
            flags = entry.get("flags", "")
            if "o_down" not in flags and "s_down" not in flags:
                masters[name] = (entry["ip"], int(entry["port"]))
        alive, in_sync, config_ok, versions, roles = await self._shards(state, up)
        resolved = self._addresses.moved(nodes, up, self.cfg.node_name, self.cfg.addr,
                                         await self._confirmed_addresses(store, state, up))
        armed = await self._failover_armed(state, up, alive)
        closed: dict[int, bool] = {}
        for bdb in state.bdbs.values():
            if bdb.status == "delete-pending":
                results = await asyncio.gather(*(port_closed(n.addr, bdb.port) for n in nodes
                                                 if n.uid in up))
                closed[bdb.uid] = all(results)
            if bdb.status == "pending":
                self._pending_since.setdefault(bdb.uid, now)
            else:
                self._pending_since.pop(bdb.uid, None)
        return Observation(now=now, up=up, evacuate_down=evacuate_down, sentinel_masters=masters,
                           shard_alive=alive, shard_in_sync=in_sync, shard_config_ok=config_ok,
                           port_closed_everywhere=closed, pending_since=dict(self._pending_since),
                           resolved_addr=resolved, failover_armed=armed, shard_version=versions,
                           shard_role=roles)

    async def _nodes_up(self, store: CcsStore, nodes: list[NodeRecord]) -> set[int]:
        """The nodes whose CCS answers (this one always)."""
        async def node_up(node: NodeRecord) -> bool:
            if node.name == self.cfg.node_name:
                return True
            try:
                return bool(await self.rt.probes.client(node.addr, node.ccs_port, store.password).ping())
            except (RedisError, OSError):
                return False

        flags = await asyncio.gather(*(node_up(n) for n in nodes))
        return {n.uid for n, ok in zip(nodes, flags, strict=True) if ok}

    async def _nodes_to_evacuate(self, store: CcsStore, state: ClusterState, nodes: list[NodeRecord],
                                 up: set[int], now: float) -> set[int]:
        """The down nodes whose replicas move now: down longer than the replica grace (or, after an
        announced restart, the restart grace; `placement.nodes_to_evacuate`)."""
        back = []
        for node in nodes:
            if node.uid in up:
                if self._down_since.pop(node.uid, None) is not None:
                    back.append(node.uid)
            else:
                self._down_since.setdefault(node.uid, now)
        if back:  # a restart it announced is over: a later loss without notice gets the short grace
            with contextlib.suppress(RedisError, OSError):
                await store.forget_restarts(back)
        grace = state.cluster.replica_move_grace_s(self.cfg.replica_move_grace_s)
        restart_grace = max(grace or 0.0, self.cfg.restart_grace_s)
        restarting = (await store.announced_restarts(restart_grace + 60.0)
                      if self._down_since and grace is not None else set())
        return nodes_to_evacuate(self._down_since, now, grace, restarting, restart_grace)

    async def _shards(
        self, state: ClusterState, up: set[int]
    ) -> tuple[dict[int, bool], set[int], dict[int, bool], dict[int, str], dict[int, str]]:
        """Per shard: whether it answers, whether it is a replica in sync, whether its memory
        settings are the placed ones, and the engine version it runs (both asked only while its
        database is not active: a change is recorded as `active-change-pending` until every shard
        runs it, an engine upgrade moves shard by shard), its role as it answers."""
        alive: dict[int, bool] = {}
        in_sync: set[int] = set()
        config_ok: dict[int, bool] = {}
        versions: dict[int, str] = {}
        roles: dict[int, str] = {}

        async def probe_shard(shard_uid: int) -> None:
            shard = state.shards[shard_uid]
            bdb = state.bdbs.get(shard.bdb_uid)
            node = state.nodes.get(shard.node_uid)
            if bdb is None or node is None or node.uid not in up:
                alive[shard_uid] = False
                return
            client = self.rt.probes.shard(node.addr, bdb)
            expected = memory_settings(bdb)
            try:
                if bdb.status == "active":
                    # the settings are checked only while a change is being applied (`bdb_status`):
                    # at rest one INFO a shard, 200 of them every settled period
                    info, conf = await client.info("replication"), expected
                else:  # one round trip a shard
                    async with client.pipeline(transaction=False) as pipe:
                        pipe.info("replication")
                        pipe.info("server")
                        for key in expected:  # one key a CONFIG GET: Redis 6.2 takes no more
                            pipe.config_get(key)
                        info, server, *got = await pipe.execute()
                    conf = {k: v for answer in got for k, v in answer.items()}
                    versions[shard_uid] = engine_of_info(server)
                alive[shard_uid] = True
                roles[shard_uid] = str(info.get("role") or "")
                if info.get("role") == "slave" and info.get("master_link_status") == "up":
                    in_sync.add(shard_uid)
                config_ok[shard_uid] = all(conf.get(key) == value for key, value in expected.items())
            except (RedisError, OSError):
                alive[shard_uid] = False

        # PROBES_IN_FLIGHT at a time: 200 replies landing at once queued every REST request of the
        # moment behind their parsing (GET /v1/bdbs/<uid> p99 25 ms at 100 databases, 9 ms at one)
        limit = asyncio.Semaphore(PROBES_IN_FLIGHT)

        async def bounded(shard_uid: int) -> None:
            async with limit:
                await probe_shard(shard_uid)

        await asyncio.gather(*(bounded(uid) for uid in list(state.shards)))
        return alive, in_sync, config_ok, versions, roles

    async def _confirmed_addresses(
        self, store: CcsStore, state: ClusterState, up: set[int]
    ) -> dict[int, str]:
        """The new addresses nodes announced (down at their recorded one) where their CCS answers
        with the cluster's CCS password."""
        try:
            announced = await store.announced_addresses()
        except RedisError:
            return {}
        confirmed: dict[int, str] = {}
        for uid, addr in announced.items():
            node = state.nodes.get(uid)
            if node is None or node.uid in up or addr == node.addr or node.name == self.cfg.node_name:
                continue
            with contextlib.suppress(RedisError, OSError):
                if await self.rt.probes.client(addr, node.ccs_port, store.password).ping():
                    confirmed[uid] = addr
        return confirmed

    async def _failover_armed(self, state: ClusterState, up: set[int], alive: dict[int, bool]) -> set[int]:
        """The pending replicated databases, with every shard running, that every live node's
        sentinel is ready to fail over (see `sentinel.failover_armed`)."""
        live = [n for n in state.nodes.values() if n.uid in up]
        armed = set()
        for bdb in state.bdbs.values():
            if bdb.status != "pending" or not bdb.replication:
                continue
            own = state.shards_of(bdb.uid)
            if not own or not all(alive.get(s.uid) for s in own):
                continue
            try:
                answers = await asyncio.gather(*(
                    failover_armed(self.rt.probes.client(n.addr, n.sentinel(bdb.tls()), None, bdb.tls()),
                                   bdb.name, len(live) - 1)
                    for n in live))
            except (RedisError, OSError):
                continue
            if all(answers):
                armed.add(bdb.uid)
        return armed
