"""The node loop's restart hold: a master shard of an existing replicated database that stopped on
this node does not come back as master while another shard holds a copy. The decision is pure
(recluster.node.restart); this gathers what it needs (the peers' shards), acts on it (hold, ask
Sentinel to promote the replica, follow or promote a peer) and remembers since when it holds."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from recluster.node.probes import one_off
from recluster.node.records import BdbRecord, ClusterState, ShardRecord
from recluster.node.restart import PeerShard, restart_decision
from recluster.node.runtime import NodeRuntime
from recluster.node.sentinel import command

log = logging.getLogger(__name__)

# A master shard that stopped waits at most this long for Sentinel to promote its replica, and asks
# again this often.
RESTART_HOLD_S = 30.0
RESTART_FAILOVER_RETRY_S = 3.0
# database states in which its shards hold data (a pending database's shards start empty anyway)
EXISTING = ("active", "active-change-pending")
# a shard of this node, its database, and the master it follows (None: it runs as master)
WantedShard = tuple[ShardRecord, BdbRecord, tuple[str, int] | None]


class RestartHold:
    def __init__(self, rt: NodeRuntime) -> None:
        self.rt = rt
        self._held_since: dict[int, float] = {}
        self._promotion_requested: dict[str, float] = {}

    async def plan(self, state: ClusterState, me: int,
                   wanted: list[WantedShard]) -> tuple[list[WantedShard], set[int]]:
        """Keep a stopped master shard of an existing replicated database from coming back as
        master while another shard holds a copy. That covers a shard that ran on this volume and
        one placed here before this node came back on an empty volume (a pod without persistence):
        both would start empty. Returns the plan and the databases whose shard is held back for now."""
        plan: list[WantedShard] = []
        held: set[int] = set()
        now = time.monotonic()
        shards = self.rt.shards
        for shard, bdb, master in wanted:
            if (master is not None or not bdb.replication or bdb.status not in EXISTING
                    or shards.process_running(bdb.uid)):
                self._held_since.pop(bdb.uid, None)
                plan.append((shard, bdb, master))
                continue
            peers, silent = await self._probe_peers(state, me, bdb)
            since = self._held_since.setdefault(bdb.uid, now)
            decision = restart_decision(peers, shards.holds_data(bdb), now - since, RESTART_HOLD_S,
                                        silent=silent)
            if decision.action == "hold":
                if since == now:
                    log.info("shard of %s stopped while master: %s before restarting it", bdb.name,
                             decision.reason)
                await self._promote_replica(bdb)
                held.add(bdb.uid)
                plan.append((shard, bdb, master))
                continue
            self._held_since.pop(bdb.uid, None)
            if decision.action == "take_over" and decision.peer is not None:
                log.warning("shard of %s: %s", bdb.name, decision.reason)
                try:
                    peer = self.rt.probes.shard(decision.peer, bdb)
                    await command(peer, "REPLICAOF", "NO", "ONE")
                except (RedisError, OSError) as exc:
                    log.warning("shard of %s: promoting %s failed (%s); trying again", bdb.name,
                                decision.peer, type(exc).__name__)
                    self._held_since[bdb.uid] = since
                    held.add(bdb.uid)
                    plan.append((shard, bdb, master))
                    continue
            if decision.peer is not None and decision.action in ("follow", "take_over"):
                log.info("shard of %s: not restarting it as master: %s; following it", bdb.name,
                         decision.reason)
                plan.append((shard, bdb, (decision.peer, bdb.port)))
            else:  # a warning when it was held first: some writes may be missing
                log.log(logging.INFO if since == now else logging.WARNING,
                        "shard of %s: restarting it as master: %s", bdb.name, decision.reason)
                plan.append((shard, bdb, master))
        return plan, held

    async def _probe_peers(
        self, state: ClusterState, me: int, bdb: BdbRecord
    ) -> tuple[list[PeerShard], list[str]]:
        """What the database's shards on other nodes answer, and the nodes whose shard did not."""
        peers: list[PeerShard] = []
        silent: list[str] = []
        for other in state.shards_of(bdb.uid):
            node = state.nodes.get(other.node_uid)
            if other.node_uid == me or node is None:
                continue
            try:
                info = await self.rt.probes.shard(node.addr, bdb).info("replication")
            except (RedisError, OSError):
                silent.append(node.addr)
                continue
            peers.append(PeerShard(
                node=node.addr,
                role="master" if info.get("role") == "master" else "replica",
                offset=int(info.get("master_repl_offset") or 0),
                syncing=bool(int(info.get("master_sync_in_progress") or 0)),
            ))
        return peers, silent

    async def _promote_replica(self, bdb: BdbRecord) -> None:
        """SENTINEL FAILOVER on this node's sentinel, else on a peer's (ours may have just restarted
        and not reached the replica yet); at most every RESTART_FAILOVER_RETRY_S."""
        now, name, tls = time.monotonic(), bdb.name, bdb.tls()
        if now - self._promotion_requested.get(name, -RESTART_FAILOVER_RETRY_S) < RESTART_FAILOVER_RETRY_S:
            return
        self._promotion_requested[name] = now
        mine = self.rt.names
        targets = [(self.rt.cfg.addr, self.rt.cfg.sentinel(tls))]
        peers = self.rt.membership.peers if self.rt.membership else []
        targets += [(p.host, p.sentinel(tls)) for p in peers if p.name not in mine and p.host not in mine]
        for host, port in targets:
            client = one_off(host, port, self.rt.database_tls.client_kwargs() if tls else None,
                             admin=self.rt.sentinel_access)
            try:
                await command(client, "SENTINEL", "FAILOVER", name)
                log.info("asked the sentinel at %s to promote the replica of %s", host, name)
                return
            except (RedisError, OSError) as exc:
                log.info("the sentinel at %s cannot promote the replica of %s yet: %s", host, name, exc)
            finally:
                await client.aclose()
