"""The node loop: every node, every tick, runs what the cluster state places on it. It keeps its
sentinel and CCS replica running, points its sentinel's monitors at the current masters, tells the
leader what only this node knows (a new address, a restart that is over) and starts, re-points or
stops this node's shards (with the restart hold of recluster.node.restart_hold)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.exceptions import RedisError, ResponseError

from recluster.node.access import database_users
from recluster.node.acl_secrets import AclSecrets
from recluster.node.bootstrap import Bootstrap
from recluster.node.ccs import CcsStore
from recluster.node.failover_decision import database_quorum, follow_named_ccs_master
from recluster.node.loops import one_pass
from recluster.node.records import BdbRecord, ClusterState
from recluster.node.restart_hold import RestartHold, WantedShard
from recluster.node.runtime import NodeRuntime, wait_for
from recluster.node.sentinel import CCS_NAME, Hurry, Monitor, healthy
from recluster.node.shard_users import AclUser

log = logging.getLogger(__name__)

UNKNOWN_REPLICA_HURRY_S = 30.0  # see NodeLoop._hurry_until_replicas_known


class DatabaseUsers:
    """The ACL users of each database's shards in one state (recluster.node.access decides who),
    with their password hashes opened."""

    def __init__(self, state: ClusterState, secrets: AclSecrets, warned: set[str]) -> None:
        self.state = state
        self.secrets = secrets
        self.warned = warned  # users already logged as unusable

    def of(self, bdb: BdbRecord) -> tuple[AclUser, ...]:
        users = []
        for user in database_users(self.state, bdb):
            opened = self.secrets.open(user.sealed_password)
            if opened is None:  # sealed with another secret: cannot be given to Redis
                if user.name not in self.warned:
                    self.warned.add(user.name)
                    log.warning("user %s: its password hash cannot be opened with this cluster's secret; "
                                "set its password again", user.name)
                continue
            users.append(AclUser(user.name, opened, user.permissions))
        return tuple(users)


class NodeLoop:
    def __init__(self, rt: NodeRuntime, bootstrap: Bootstrap) -> None:
        self.rt = rt
        self.cfg = rt.cfg
        self.bootstrap = bootstrap
        self.restart_hold = RestartHold(rt)
        self.shards_ready = False
        self._shards_checked = (-1, 0.0)  # (state version, monotonic time) of the last shard check
        self._last_members: int | None = None
        self._unsealable: set[str] = set()
        self._ccs_min_replicas: int | None = None
        # this node's replicas (db, master ip, master port) its sentinel lists / does not list yet
        self._replicas_listed: set[tuple[str, str, str]] = set()
        self._replica_unknown_since: dict[tuple[str, str, str], float] = {}
        self._restart_over = False  # told the leader that a restart announced before this start is over
        # What the last full pass acted on (the state and sentinel reading objects, the leader) and
        # the shards it placed: at rest the same again (see `_unchanged`)
        self._acted_on: tuple[object, object, object] | None = None
        self._placed: list[int] = []

    async def run(self) -> None:
        while True:
            if self.rt.member() is not None:
                await one_pass("node loop", self.tick)
            await asyncio.sleep(self.cfg.tick_s)

    def recheck_shards(self) -> None:
        """Ask every shard at the next tick (a sentinel event: roles may have changed)."""
        self._shards_checked = (-1, 0.0)

    async def tick(self) -> None:
        member = self.rt.member()
        assert member is not None
        membership, store = member
        rt = self.rt
        if not rt.sentinel_server.process.running():
            rt.sentinel_server.start()
            rt.sentinel.forget_masters()
            await wait_for("the sentinel to start", rt.sentinel.client.ping, 30)
            await rt.tune_sentinel()
        await self.bootstrap.ensure_ccs_running()
        state = await store.read()
        if state is None:
            return
        await self._follow_database_tls(state)
        if rt.served_tls is not None:  # a user's API/console/metrics certificate, or the node's own
            rt.served_tls.follow(state.cluster.served_certificates)
        await rt.tune_sentinel()
        me = state.nodes.get(membership.node_uid)
        if me is None or me.name != self.cfg.node_name:
            if await store.in_sync() and state.version > 1:
                await self.bootstrap.leave()
            return
        self.bootstrap.remember_peers(state)
        if me.addr != self.cfg.addr:  # back at a new address: tell the leader, which records it
            with contextlib.suppress(RedisError, OSError):
                await store.announce_address(me.uid, self.cfg.addr)
        if not self._restart_over:  # once per start: a restart this node announced is over
            with contextlib.suppress(RedisError, OSError):
                await store.restarted(me.uid)
                self._restart_over = True
        quorum = state.majority()
        known = await rt.sentinel.masters()
        await self._follow_named_ccs_master(store, known.get(CCS_NAME), quorum - 1)
        leader = await store.leader_addr()
        now = time.monotonic()
        check = (not self.shards_ready or state.version != self._shards_checked[0]
                 or now - self._shards_checked[1] >= self.cfg.settled_tick_s)
        if not check and self._unchanged(state, known, leader):
            return
        self._acted_on = None
        monitors = [Monitor(CCS_NAME, leader[0], leader[1], quorum, store.password)] if leader else []
        # The addresses nodes have now. This node's own record may still hold the address it had
        # before a restart (admission updates it): that one is nobody's, and a shard must never
        # follow it (it would replicate from nothing, unseen by Sentinel, for ever).
        current = ({n.addr for n in state.nodes.values() if n.uid != me.uid}
                   | {n.name for n in state.nodes.values()} | {self.cfg.addr})
        masters = {s.bdb_uid: s for s in state.shards.values() if s.role == "master"}
        for bdb in state.bdbs.values():
            if bdb.status == "delete-pending":
                continue
            master = masters.get(bdb.uid)
            node = state.nodes.get(master.node_uid) if master else None
            if node is not None:
                addr = self.cfg.addr if node.uid == me.uid else node.addr
                user, password = bdb.login("sentinel")
                monitors.append(Monitor(bdb.name, addr, bdb.port, database_quorum(len(state.nodes)),
                                        password, user))
        await self._hurry_until_replicas_known(state, me.uid, known)
        await rt.sentinel.ensure(monitors, known, current)
        if self._last_members is not None and len(state.nodes) < self._last_members:
            log.info("a node left: SENTINEL RESET so this sentinel forgets it")
            await rt.sentinel.reset("*")
        self._last_members = len(state.nodes)
        if self._ccs_min_replicas != quorum - 1:
            await store.set_min_replicas(quorum - 1)
            self._ccs_min_replicas = quorum - 1
        wanted: list[WantedShard] = []
        for shard in state.shards_on(me.uid):
            placed = state.bdbs.get(shard.bdb_uid)
            if placed is None or placed.status == "delete-pending":
                continue
            wanted.append((shard, placed, self._master_to_follow(state, shard.bdb_uid, known, current)))
        wanted, held = await self.restart_hold.plan(state, me.uid, wanted)
        # Every shard is asked (one INFO each) on a change, while not all answer, and otherwise every
        # settled period: at 100 databases asking twice a second was a fifth of a daemon's CPU
        users = DatabaseUsers(state, rt.acl_secrets(), self._unsealable)
        await rt.shards.ensure(wanted, hold=held, current=current, check=check, users=users.of)
        if check:
            self._shards_checked = (state.version, now)
        self.shards_ready = all(bdb.uid in rt.shards.answering for _, bdb, _ in wanted)
        if not held and not self._replica_unknown_since:
            self._acted_on = (state, known, leader)
            self._placed = [bdb.uid for _, bdb, _ in wanted]

    async def _follow_database_tls(self, state: ClusterState) -> None:
        """While the cluster has a TLS database: this node's certificate is current (renewed before
        it expires, reissued for a new CA) and its TLS sentinel runs, restarted to serve a
        reissued certificate (its monitors are in its config file and come back with it)."""
        rt = self.rt
        rt.tls_names.follow(state)
        ca = state.cluster.database_ca()
        if not rt.tls_names.any or ca is None:
            return
        if rt.database_tls.ensure_node(state.cluster):
            await rt.renew_tls_clients()
            if rt.sentinel_tls_server.process.running():
                log.info("this node's database certificate was reissued: restarting the TLS sentinel")
                await asyncio.to_thread(rt.sentinel_tls_server.process.stop)
        await rt.ensure_tls_sentinel()

    def _unchanged(self, state: ClusterState, known: object, leader: object) -> bool:
        """Whether this pass would do what the last full one did: the same state revision (the
        store hands out one object per revision), the same sentinel reading (renewed every 2 s and
        on every sentinel event), the same leader, every placed shard still running and nothing
        held or hurried. Then the monitors, the plan and the shards are as they were, and at 100
        databases rebuilding them twice a second was most of an idle daemon's CPU."""
        if self._acted_on is None or self._acted_on[0] is not state or self._acted_on[1] is not known \
                or self._acted_on[2] != leader:
            return False
        return all(self.rt.shards.process_running(uid) for uid in self._placed)

    async def _hurry_until_replicas_known(self, state: ClusterState, me: int,
                                          known: dict[str, dict[str, str]]) -> None:
        """Keep this node's sentinel reading INFO every second while it does not list one of this
        node's replicas (just attached, or back at a new address after a pod restart). A sentinel
        learns replicas only from the master's INFO, every 10 s at 100 monitors, and cannot promote
        one it does not list: in a 100-database run, a node stopped 11 s after another pod came back
        left 5 databases without a failover (NOGOODSLAVE on every sentinel). Each replica is asked
        about once per master: nothing at rest. Hurried for at most UNKNOWN_REPLICA_HURRY_S each
        (a replica that never syncs must not keep the sentinel busy)."""
        now = time.monotonic()
        listed: set[tuple[str, str, str]] = set()
        unknown: dict[tuple[str, str, str], float] = {}
        for shard in state.shards_on(me):
            bdb = state.bdbs.get(shard.bdb_uid)
            entry = known.get(bdb.name) if bdb is not None else None
            if bdb is None or entry is None or not bdb.replication or shard.role != "slave" \
                    or entry.get("ip") in self.rt.names:
                continue
            key = (bdb.name, entry.get("ip", ""), entry.get("port", ""))
            if key in self._replicas_listed or await self._sentinel_lists(bdb.name, bdb.port):
                listed.add(key)
            else:
                unknown[key] = self._replica_unknown_since.get(key, now)
        self._replicas_listed, self._replica_unknown_since = listed, unknown
        self.rt.hurry.set(Hurry.REPLICA_UNKNOWN,
                          any(now - since <= UNKNOWN_REPLICA_HURRY_S for since in unknown.values()))

    async def _sentinel_lists(self, name: str, port: int) -> bool:
        """Whether this node's sentinel lists this node's replica of `name`, up and linked."""
        try:
            replicas = await self.rt.sentinel.replicas(name)
        except ResponseError:  # not monitored yet
            return False
        return any(r.get("ip") == self.cfg.addr and r.get("port") == str(port) and healthy(r)
                   and r.get("master-link-status") == "ok" for r in replicas)

    async def _follow_named_ccs_master(self, store: CcsStore, named: dict[str, str] | None,
                                       needed: int) -> None:
        """A lone CCS master (this node came back at a new address while another node's CCS took
        over) follows the master the sentinels name: `failover_decision.follow_named_ccs_master`.
        The checks cost nothing on a replica's node (its CCS is not a master) and on the leader's."""
        if named is None or named.get("ip") in self.rt.names:
            return
        local = await store.replication()
        if local.get("role") != "master":
            return
        host, port = named["ip"], int(named["port"])
        try:
            theirs = await self.rt.probes.client(host, port, store.password).info("replication")
        except (RedisError, OSError):
            return
        me = set(self.rt.names)
        known = any(r.get("ip") in me and int(r.get("port", 0)) == self.cfg.ccs_port
                    for r in await self.rt.sentinel.replicas(CCS_NAME))
        mine, theirs_count = int(local.get("connected_slaves", 0)), int(theirs.get("connected_slaves", 0))
        if not follow_named_ccs_master(me, known, mine, host, str(theirs.get("role")), theirs_count, needed):
            return
        log.warning("this node's CCS is a master no majority follows while the sentinels name %s:%d, "
                    "which a majority does: following it", host, port)
        await store.local.replicaof(host, port)
        self.rt.sentinel.forget_masters()

    def _master_to_follow(self, state: ClusterState, bdb_uid: int, known: dict[str, dict[str, str]],
                          current: set[str]) -> tuple[str, int] | None:
        """Where a shard of this node that is (re)started must replicate from; None = start as master.
        Sentinel's view wins once it monitors the database at an address a node has now; before
        that (or when the sentinel remembers an address no node has any more), the placement's."""
        bdb = state.bdbs[bdb_uid]
        seen = known.get(bdb.name)
        if seen is not None and int(seen.get("port", 0)) == bdb.port and seen["ip"] in current:
            return None if seen["ip"] in self.rt.names else (seen["ip"], bdb.port)
        master = next((s for s in state.shards_of(bdb_uid) if s.role == "master"), None)
        if master is None:
            return None
        node = state.nodes.get(master.node_uid)
        if node is None or node.uid == (self.rt.membership.node_uid if self.rt.membership else -1):
            return None
        return (node.addr, bdb.port)
