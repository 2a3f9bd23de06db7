"""The node daemon's runtime: bootstrap (create, join, resume after a restart), the node loop that
runs what the cluster state places on this node, and the leader loop that turns what Sentinel and
the shards report into the cluster state.

Ownership: each node runs its own CCS replica, sentinel and shards (node loop); only the leader (the
node whose CCS is master) decides placement and writes the state (leader loop, REST writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from recluster.clients.peer_tls import peer_verification
from recluster.clients.redis_retry import no_retry
from recluster.node.addresses import AddressWatch
from recluster.node.auth import CredentialCheck, hash_password
from recluster.node.ccs import CcsServer, CcsStore, utcnow
from recluster.node.config import NodeConfig, read_credentials_file
from recluster.node.errors import ApiError
from recluster.node.failover_decision import database_quorum, follow_named_ccs_master
from recluster.node.failover_watch import FailoverWatch
from recluster.node.identity import Membership, Peer
from recluster.node.loops import one_pass, wait_or_wake
from recluster.node.models import (
    BdbRecord,
    BootstrapRequest,
    ClusterRecord,
    ClusterState,
    Credentials,
    JoinRequest,
    NodeRecord,
    ShardRecord,
)
from recluster.node.placement import nodes_to_evacuate
from recluster.node.reconcile import (
    Observation,
    apply_plan,
    bdb_status,
    min_replicas,
    plan_repair,
    progress_removals,
    settled,
    sync_roles,
    sync_status,
)
from recluster.node.restart import PeerShard, restart_decision
from recluster.node.sentinel import (
    CCS_NAME,
    Hurry,
    Monitor,
    SentinelControl,
    SentinelServer,
    command,
    failover_armed,
    healthy,
)
from recluster.node.shards import ShardSupervisor

log = logging.getLogger(__name__)

FAILOVER_RETRY_S = 15.0
HANDOFF_RETRY_S = 2.0  # how often a shutting-down node repeats a refused failover request
ANNOUNCE_TIMEOUT_S = 2.0  # a planned restart's announcement to the leader, on SIGTERM
UNKNOWN_REPLICA_HURRY_S = 30.0  # see NodeDaemon._hurry_until_replicas_known
# A master shard that stopped waits at most this long for Sentinel to promote its replica (see
# recluster.node.restart), and asks again this often.
RESTART_HOLD_S = 30.0
RESTART_FAILOVER_RETRY_S = 3.0
# database states in which its shards hold data (a pending database's shards start empty anyway)
EXISTING = ("active", "active-change-pending")
# a shard of this node, its database, and the master it follows (None: it runs as master)
WantedShard = tuple[ShardRecord, BdbRecord, tuple[str, int] | None]


@dataclass
class BootstrapStatus:
    state: str = "idle"
    start_time: str = ""
    end_time: str = ""
    error_code: str = ""
    error_details: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.start_time:
            out["start_time"] = self.start_time
        if self.end_time:
            out["end_time"] = self.end_time
        if self.state == "error":
            out["error_code"] = self.error_code
            out["error_details"] = self.error_details
        return out


async def wait_for(what: str, check: Any, timeout_s: float, interval: float = 0.2) -> None:
    """Poll the async `check` until it returns true; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(RedisError, OSError):
            if await check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


class NodeDaemon:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.membership = Membership.load(cfg.data_dir)
        self.bootstrap = BootstrapStatus("completed" if self.membership else "idle")
        self.ccs_server = CcsServer(cfg)
        self.sentinel_server = SentinelServer(cfg)
        self.hurry = Hurry()  # shared with the failover watch's own SentinelControl (its thread)
        self.sentinel = SentinelControl(cfg, self.hurry)
        self.failover_watch = FailoverWatch(cfg, self.hurry)
        self.store: CcsStore | None = CcsStore(cfg, self.membership.ccs_password) if self.membership else None
        self.shards = ShardSupervisor(cfg)
        self.credentials = CredentialCheck()
        self.wake = asyncio.Event()
        self._settled = False  # the last leader pass found nothing to follow closely
        self._unconfirmed_logged = -FAILOVER_RETRY_S  # when a failover held for want of a majority was logged
        self._shards_checked = (-1, 0.0)  # (state version, monotonic time) of the last shard check
        self.shards_ready = False
        self.resumed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._bootstrap_task: asyncio.Task[None] | None = None
        self._down_since: dict[int, float] = {}
        self._pending_since: dict[int, float] = {}
        self._failover_requested: dict[str, float] = {}
        self._held_since: dict[int, float] = {}
        self._promotion_requested: dict[str, float] = {}
        self._probe_clients: dict[tuple[str, int], aioredis.Redis] = {}
        self._addresses = AddressWatch()
        self._last_members: int | None = None
        self._ccs_min_replicas: int | None = None
        self._tuned_sentinel: int | None = None
        # this node's replicas (db, master ip, master port) its sentinel lists / does not list yet
        self._replicas_listed: set[tuple[str, str, str]] = set()
        self._restart_over = False  # told the leader that a restart announced before this start is over
        self._replica_unknown_since: dict[tuple[str, str, str], float] = {}
        self._http = httpx.AsyncClient(verify=peer_verification(cfg.cert_dir),
                                       timeout=httpx.Timeout(30.0, connect=3.0))

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if self.membership is not None:
            self._tasks.append(asyncio.create_task(self._resume_then_loop()))
        else:
            self._tasks.append(asyncio.create_task(self._loops()))

    async def _resume_then_loop(self) -> None:
        try:
            await self._resume()
        except Exception:
            log.exception("resuming cluster membership failed; the node loop retries")
        await self._loops()

    async def _loops(self) -> None:
        self.failover_watch.start(self._placed_state)
        await asyncio.gather(self._node_loop(), self._leader_loop(), self._sentinel_events())

    def _placed_state(self) -> tuple[ClusterState, int] | None:
        """The cluster state the node loop last read, and this node's uid (for the failover watch)."""
        if self.membership is None or self.store is None or self.bootstrap.state != "completed":
            return None
        state = self.store.last_state
        return (state, self.membership.node_uid) if state is not None else None

    async def stop(self, handoff_timeout: float) -> None:
        if self.membership is not None and self.store is not None:
            await self._announce_restart(self.store, self.membership.node_uid)
        if self.membership is not None and handoff_timeout > 0:
            try:
                await asyncio.wait_for(self.handoff(), handoff_timeout)
            except (TimeoutError, RedisError, OSError) as exc:
                log.warning("handing master shards over before shutdown did not finish: %s", exc)
        for task in [*self._tasks, *([self._bootstrap_task] if self._bootstrap_task else [])]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.failover_watch.stop()  # before the processes: no failover asked while they stop
        log.info("stopping this node's shards, sentinel and configuration store")
        started = time.monotonic()
        await asyncio.gather(asyncio.to_thread(self.shards.stop_all),
                             asyncio.to_thread(self.sentinel_server.process.stop),
                             asyncio.to_thread(self.ccs_server.process.stop))
        log.info("stopped in %.1f s", time.monotonic() - started)
        await self.sentinel.close()
        if self.store is not None:
            await self.store.close()
        for client in self._probe_clients.values():
            await client.aclose()
        self._addresses.cancel()
        await self._http.aclose()

    @staticmethod
    async def _announce_restart(store: CcsStore, me: int) -> None:
        """SIGTERM is a planned stop: tell the leader first, so it waits for this node's return
        before it copies its replicas elsewhere (`placement.nodes_to_evacuate`)."""
        try:
            await asyncio.wait_for(store.announce_restart(me), ANNOUNCE_TIMEOUT_S)
            log.info("shutdown: told the leader this is a planned restart")
        except (TimeoutError, RedisError, OSError) as exc:
            log.info("shutdown: could not tell the leader this is a planned restart (%s)", type(exc).__name__)

    async def handoff(self) -> None:
        """Planned failover of this node's master shards (and the CCS) to replicas elsewhere."""
        assert self.store is not None and self.membership is not None
        state = await self.store.read()
        if state is None or len(state.nodes) < 2:
            return
        me = self.membership.node_uid
        names = []
        for shard in state.shards_on(me):
            bdb = state.bdbs.get(shard.bdb_uid)
            if bdb is None or shard.role != "master":
                continue
            if any(s.node_uid != me for s in state.shards_of(bdb.uid)):
                names.append(bdb.name)
        if await self.store.is_master():
            names.append(CCS_NAME)
        mine = (self.cfg.node_name, self.cfg.addr)
        requested: dict[str, float] = {}

        async def request_failovers() -> None:
            """Ask (again, every HANDOFF_RETRY_S) for the failover of each master still here: Sentinel
            refuses while no replica is good enough yet or another failover runs, and one refusal
            must not leave the master to be found dead only after this node has exited."""
            for name in names:
                if time.monotonic() - requested.get(name, -HANDOFF_RETRY_S) < HANDOFF_RETRY_S:
                    continue
                local = await self.sentinel.master_addr(name)
                if local is not None and local[0] not in mine:
                    continue
                requested[name] = time.monotonic()
                try:
                    await self.sentinel.failover(name)
                    log.info("shutdown: asked sentinel to fail %s over to a replica", name)
                except RedisError as exc:
                    log.info("shutdown: sentinel cannot fail %s over yet (%s); asking again", name, exc)

        await request_failovers()

        others = [p for p in self.membership.peers if p.name not in mine and p.host not in mine]
        needed = (len(others) + 1) // 2 + 1 - 1  # a majority of all sentinels, this one included

        async def handed_over() -> bool:
            """A majority of the sentinels (not just ours, which knows first and dies with us) report
            every one of our masters elsewhere: then the new configuration survives our exit."""
            for name in names:
                local = await self.sentinel.master_addr(name)
                if local is None or local[0] in mine:
                    return False
                agree = 0
                for peer in others:
                    client = aioredis.Redis(host=peer.host, port=peer.sentinel_port, socket_timeout=1,
                                            socket_connect_timeout=1, decode_responses=True, retry=no_retry())
                    try:
                        reply = await command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
                        agree += bool(reply) and str(reply[0]) not in mine
                    except (RedisError, OSError):
                        pass
                    finally:
                        await client.aclose()
                if agree < needed:
                    return False
            return True

        async def handed_over_or_ask_again() -> bool:
            if await handed_over():
                return True
            await request_failovers()
            return False

        await wait_for("this node's master shards to move to replicas", handed_over_or_ask_again, 25)
        log.info("shutdown: %s handed over to replicas", ", ".join(names) or "nothing")

    # ---- bootstrap ----------------------------------------------------------------------------

    def begin_bootstrap(self, action: str, request: BootstrapRequest) -> None:
        if self.bootstrap.state in ("creating_cluster", "joining_cluster"):
            raise ApiError(409, "bootstrap_in_progress",
                           f"a bootstrap is in progress (state '{self.bootstrap.state}')")
        if self.membership is not None:
            raise ApiError(409, "already_bootstrapped", "this node already belongs to cluster "
                           f"'{self.membership.cluster_name}'")
        if request.credentials is None:
            request.credentials = self._credentials_from_file()
        if action == "join_cluster" and not request.cluster.nodes:
            raise ApiError(400, "config_error", "'cluster.nodes': join_cluster needs the address of at "
                           "least one node of the cluster", "cluster.nodes")
        if action == "create_cluster" and not request.cluster.name:
            raise ApiError(400, "config_error", "'cluster.name': create_cluster needs the cluster's name",
                           "cluster.name")
        self.bootstrap = BootstrapStatus("creating_cluster" if action == "create_cluster"
                                         else "joining_cluster", start_time=utcnow())
        work = self._create_cluster(request) if action == "create_cluster" else self._join_cluster(request)
        self._bootstrap_task = asyncio.create_task(self._run_bootstrap(work))

    def _credentials_from_file(self) -> Credentials:
        if self.cfg.credentials_file is None:
            raise ApiError(400, "missing_field", "'credentials' is required (this node has no "
                           "--credentials-file to take them from)", "credentials")
        try:
            username, password = read_credentials_file(self.cfg.credentials_file)
        except (OSError, ValueError, KeyError) as exc:
            raise ApiError(400, "config_error", "'credentials': the node's credentials file cannot be "
                           f"read ({type(exc).__name__})", "credentials") from exc
        return Credentials(username=username, password=password)

    async def _run_bootstrap(self, work: Any) -> None:
        try:
            await work
            self.bootstrap.state, self.bootstrap.end_time = "completed", utcnow()
            log.info("bootstrap completed: node %d of cluster '%s'", self.membership.node_uid
                     if self.membership else 0, self.membership.cluster_name if self.membership else "")
        except BootstrapFailed as exc:
            self._bootstrap_error(exc.code, exc.message)
        except Exception as exc:
            log.exception("bootstrap failed")
            self._bootstrap_error("internal_error", f"{type(exc).__name__}: {exc}")

    def _bootstrap_error(self, code: str, message: str) -> None:
        log.warning("bootstrap failed: %s: %s", code, message)
        self.bootstrap.state, self.bootstrap.end_time = "error", utcnow()
        self.bootstrap.error_code, self.bootstrap.error_details = code, {"message": message}

    def _node_record(self, uid: int) -> NodeRecord:
        return NodeRecord(uid=uid, name=self.cfg.node_name, addr=self.cfg.addr, api_port=self.cfg.api_port,
                          ccs_port=self.cfg.ccs_port, sentinel_port=self.cfg.sentinel_port,
                          metrics_port=self.cfg.metrics_port, total_memory=total_memory(),
                          cores=os.cpu_count() or 1, joined_time=utcnow())

    def _me_as_peer(self) -> Peer:
        return Peer(self.cfg.node_name, self.cfg.ccs_port, self.cfg.sentinel_port, self.cfg.api_port,
                    self.cfg.addr)

    async def _create_cluster(self, request: BootstrapRequest) -> None:
        credentials = request.credentials
        assert credentials is not None  # filled in by begin_bootstrap
        password = secrets.token_hex(24)
        name = request.cluster.name or "cluster.local"
        self.ccs_server.start(password, None, 0)
        store = CcsStore(self.cfg, password)
        await wait_for("the configuration store to start", store.local.ping, 30)
        self.sentinel_server.start()
        await wait_for("the sentinel to start", self.sentinel.client.ping, 30)
        await self._tune_sentinel()
        await self.sentinel.ensure([Monitor(CCS_NAME, self.cfg.addr, self.cfg.ccs_port, 1, password)])
        state = ClusterState(cluster=ClusterRecord(
            name=name, created_time=utcnow(), username=credentials.username,
            password_hash=hash_password(credentials.password), license=request.license or "",
            license_updated=utcnow() if request.license else ""))
        state.nodes[1] = self._node_record(1)
        state.next_uid["node"] = 2
        await store.initialize(state)
        membership = Membership(1, name, password, [self._me_as_peer()])
        membership.save(self.cfg.data_dir)
        self.store, self.membership = store, membership

    async def _join_cluster(self, request: BootstrapRequest) -> None:
        body = JoinRequest(name=self.cfg.node_name, addr=self.cfg.addr, api_port=self.cfg.api_port,
                           ccs_port=self.cfg.ccs_port, sentinel_port=self.cfg.sentinel_port,
                           metrics_port=self.cfg.metrics_port, total_memory=total_memory(),
                           cores=os.cpu_count() or 1)
        assert request.credentials is not None  # filled in by begin_bootstrap
        auth = (request.credentials.username, request.credentials.password)
        answer: dict[str, Any] | None = None
        problems = []
        for target in request.cluster.nodes:
            host, _, port = target.partition(":")
            url = f"https://{host}:{port or self.cfg.api_port}/v1/internal/join"
            try:
                response = await self._http.post(url, json=body.model_dump(), auth=auth)
            except httpx.HTTPError as exc:
                problems.append(f"{target}: {type(exc).__name__}")
                continue
            if response.status_code == 401:
                raise BootstrapFailed("access_denied", f"{target} refused the credentials")
            if response.status_code != 200:
                problems.append(f"{target}: HTTP {response.status_code} {response.text[:200]}")
                continue
            answer = response.json()
            break
        if answer is None:
            raise BootstrapFailed("connect_error", "no node of the cluster admitted this node: "
                                  + "; ".join(problems))
        peers = [Peer(**p) for p in answer["peers"]]
        membership = Membership(int(answer["node_uid"]), str(answer["cluster_name"]),
                                str(answer["ccs_password"]), peers)
        membership.save(self.cfg.data_dir)
        leader = (str(answer["leader"]), int(answer["leader_ccs_port"]))
        store = CcsStore(self.cfg, membership.ccs_password)
        self.ccs_server.start(membership.ccs_password, leader, len(peers) // 2)
        self.sentinel_server.start()
        await wait_for("the sentinel to start", self.sentinel.client.ping, 30)
        await self._tune_sentinel()
        await self.sentinel.ensure([Monitor(CCS_NAME, leader[0], leader[1], len(peers) // 2 + 1,
                                            membership.ccs_password)])
        self.store, self.membership = store, membership

        async def synced() -> bool:
            state = await store.read_local()
            return await store.in_sync() and state is not None and membership.node_uid in state.nodes

        try:
            await wait_for("this node's configuration store to sync from the leader", synced, 90)
        except TimeoutError as exc:
            raise BootstrapFailed("connect_error", str(exc)) from exc

    async def admit(self, request: JoinRequest) -> dict[str, Any]:
        """Leader: add a node to the cluster (or give a returning node its old uid)."""
        assert self.store is not None and self.membership is not None

        def change(state: ClusterState) -> int:
            existing = state.node_by_name(request.name)
            if existing is not None:
                existing.addr = request.addr  # a pod back under its name, maybe at a new address
                return existing.uid
            uid = state.allocate("node")
            while uid in state.nodes:
                uid = state.allocate("node")
            state.nodes[uid] = NodeRecord(uid=uid, joined_time=utcnow(),
                                          **request.model_dump(exclude={"total_memory", "cores"}),
                                          total_memory=request.total_memory, cores=request.cores)
            return uid

        uid = await self.store.write(change, f"admit node {request.name}")
        self.wake.set()  # the leader loop places replicas on the new node without waiting its period
        state = self.store.last_state
        assert state is not None
        peers = [peer_of(n).__dict__ for n in state.nodes.values()]
        return {"node_uid": uid, "cluster_name": state.cluster.name, "ccs_password": self.store.password,
                "leader": self.cfg.addr, "leader_ccs_port": self.cfg.ccs_port, "peers": peers}

    async def _find_ccs_master(self) -> tuple[str, int] | None:
        """The CCS master the sentinels agree on: the answer with the highest config epoch among the
        peers' sentinels (a node back from a crash may remember an old master)."""
        assert self.membership is not None
        best: tuple[int, str, int] | None = None
        for peer in self.membership.peers:
            client = aioredis.Redis(host=await self._current_host(peer), port=peer.sentinel_port,
                                    socket_timeout=1, socket_connect_timeout=1, decode_responses=True,
                                    retry=no_retry())
            try:
                row = await command(client, "SENTINEL", "MASTER", CCS_NAME)
                entry = dict(zip(row[::2], row[1::2], strict=False)) if isinstance(row, list) else dict(row)
                epoch = int(entry.get("config-epoch", 0))
                if best is None or epoch > best[0]:
                    best = (epoch, str(entry["ip"]), int(entry["port"]))
            except (RedisError, OSError, KeyError, ValueError):
                pass
            finally:
                await client.aclose()
        if best is None:
            return None
        # the sentinels remember addresses; after the pods came back with new ones (a whole cluster
        # restarted) the answer is the master's old address: find its node and where it is now
        owner = next((p for p in self.membership.peers if best[1] in (p.addr, p.name)), None)
        if owner is None or owner.name == self.cfg.node_name:
            return (self.cfg.addr if owner is not None else best[1], best[2])
        return (await self._current_host(owner), best[2])

    async def _current_host(self, peer: Peer) -> str:
        """Where a peer is now: its recorded address while that answers, else its name's address
        (or the name itself, for Redis to resolve when it connects). Only a resuming node asks, the
        failover path never does."""
        if not peer.addr or peer.addr == peer.name or not await port_closed(peer.addr, peer.sentinel_port):
            return peer.host
        with contextlib.suppress(OSError, TimeoutError, IndexError):
            infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
                peer.name, None, type=socket.SOCK_STREAM), 2)
            return str(infos[0][4][0])
        return peer.name

    async def _tune_sentinel(self) -> None:
        pid = self.sentinel_server.process.pid()
        if pid is not None and pid != self._tuned_sentinel:
            await self.sentinel.tune()
            self._tuned_sentinel = pid

    async def _resume(self) -> None:
        """Restarted with a data directory that says we belong to a cluster: start (or adopt) the
        sentinel and the CCS as the replica of the current leader, then the node loop does the rest."""
        assert self.membership is not None and self.store is not None
        self.sentinel_server.start()
        await wait_for("the sentinel to start", self.sentinel.client.ping, 30)
        await self._ensure_ccs_running()
        self.resumed = True
        log.info("resumed membership of cluster '%s' as node %d", self.membership.cluster_name,
                 self.membership.node_uid)

    async def _ensure_ccs_running(self) -> None:
        assert self.membership is not None
        if self.ccs_server.process.running():
            return
        master = await self._find_ccs_master()
        me = master is None or master[0] in (self.cfg.node_name, self.cfg.addr)
        self.ccs_server.start(self.membership.ccs_password, None if me else master,
                              len(self.membership.peers) // 2)

    async def leave_cluster(self) -> None:
        """This node was removed: stop everything of the cluster and forget the membership."""
        log.info("this node is no longer a member of the cluster; stopping its processes")
        await asyncio.to_thread(self.shards.stop_all)
        await asyncio.to_thread(self.sentinel_server.process.stop)
        await asyncio.to_thread(self.ccs_server.process.stop)
        Membership.forget(self.cfg.data_dir)
        for sub in ("sentinel", "ccs"):
            path = self.cfg.data_dir / sub
            for child in sorted(path.glob("**/*"), reverse=True) if path.exists() else []:
                with contextlib.suppress(OSError):
                    child.unlink() if child.is_file() else child.rmdir()
        if self.store is not None:
            await self.store.close()
        self.membership, self.store = None, None
        self.bootstrap = BootstrapStatus("idle")
        self.sentinel = SentinelControl(self.cfg, self.hurry)

    # ---- node loop ----------------------------------------------------------------------------

    async def _node_loop(self) -> None:
        while True:
            if self.membership and self.store and self.bootstrap.state == "completed":
                await one_pass("node loop", self.node_tick)
            await asyncio.sleep(self.cfg.tick_s)

    async def node_tick(self) -> None:
        assert self.membership is not None and self.store is not None
        if not self.sentinel_server.process.running():
            self.sentinel_server.start()
            self.sentinel.forget_masters()
            await wait_for("the sentinel to start", self.sentinel.client.ping, 30)
        await self._tune_sentinel()
        await self._ensure_ccs_running()
        store = self.store
        state = await store.read()
        if state is None:
            return
        me = state.nodes.get(self.membership.node_uid)
        if me is None or me.name != self.cfg.node_name:
            if await store.in_sync() and state.version > 1:
                await self.leave_cluster()
            return
        self._remember_peers(state)
        if me.addr != self.cfg.addr:  # back at a new address: tell the leader, which records it
            with contextlib.suppress(RedisError, OSError):
                await store.announce_address(me.uid, self.cfg.addr)
        if not self._restart_over:  # once per start: a restart this node announced is over
            with contextlib.suppress(RedisError, OSError):
                await store.restarted(me.uid)
                self._restart_over = True
        quorum = state.majority()
        known = await self.sentinel.masters()
        await self._follow_named_ccs_master(store, known.get(CCS_NAME), quorum - 1)
        leader = await store.leader_addr()
        monitors = [Monitor(CCS_NAME, leader[0], leader[1], quorum, store.password)] if leader else []
        # The addresses nodes have now. This node's own record may still hold the address it had
        # before a restart (admission updates it): that one is nobody's, and a shard must never
        # follow it (it would replicate from nothing, unseen by Sentinel, for ever).
        current = ({n.addr for n in state.nodes.values() if n.uid != me.uid}
                   | {n.name for n in state.nodes.values()} | {self.cfg.addr})
        for bdb in state.bdbs.values():
            if bdb.status == "delete-pending":
                continue
            master = next((s for s in state.shards_of(bdb.uid) if s.role == "master"), None)
            node = state.nodes.get(master.node_uid) if master else None
            if node is not None:
                addr = self.cfg.addr if node.uid == me.uid else node.addr
                monitors.append(Monitor(bdb.name, addr, bdb.port, database_quorum(len(state.nodes)),
                                        bdb.authentication_redis_pass))
        await self._hurry_until_replicas_known(state, me.uid, known)
        await self.sentinel.ensure(monitors, known, current)
        if self._last_members is not None and len(state.nodes) < self._last_members:
            log.info("a node left: SENTINEL RESET so this sentinel forgets it")
            await self.sentinel.reset("*")
        self._last_members = len(state.nodes)
        if self._ccs_min_replicas != quorum - 1:
            await store.set_min_replicas(quorum - 1)
            self._ccs_min_replicas = quorum - 1
        wanted = []
        for shard in state.shards_on(me.uid):
            placed = state.bdbs.get(shard.bdb_uid)
            if placed is None or placed.status == "delete-pending":
                continue
            wanted.append((shard, placed, self._master_to_follow(state, shard.bdb_uid, known, current)))
        wanted, held = await self._restart_plan(state, me.uid, wanted)
        # Every shard is asked (one INFO each) on a change, while not all answer, and otherwise every
        # settled period: at 100 databases asking twice a second was a fifth of a daemon's CPU
        now = time.monotonic()
        check = (not self.shards_ready or state.version != self._shards_checked[0]
                 or now - self._shards_checked[1] >= self.cfg.settled_tick_s)
        await self.shards.ensure(wanted, hold=held, current=current, check=check)
        if check:
            self._shards_checked = (state.version, now)
        self.shards_ready = all(bdb.uid in self.shards.answering for _, bdb, _ in wanted)

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
                    or entry.get("ip") in (self.cfg.addr, self.cfg.node_name):
                continue
            key = (bdb.name, entry.get("ip", ""), entry.get("port", ""))
            if key in self._replicas_listed or await self._sentinel_lists(bdb.name, bdb.port):
                listed.add(key)
            else:
                unknown[key] = self._replica_unknown_since.get(key, now)
        self._replicas_listed, self._replica_unknown_since = listed, unknown
        self.hurry.set(Hurry.REPLICA_UNKNOWN,
                       any(now - since <= UNKNOWN_REPLICA_HURRY_S for since in unknown.values()))

    async def _sentinel_lists(self, name: str, port: int) -> bool:
        """Whether this node's sentinel lists this node's replica of `name`, up and linked."""
        try:
            replicas = await self.sentinel.replicas(name)
        except ResponseError:  # not monitored yet
            return False
        return any(r.get("ip") == self.cfg.addr and r.get("port") == str(port) and healthy(r)
                   and r.get("master-link-status") == "ok" for r in replicas)

    async def _follow_named_ccs_master(self, store: CcsStore, named: dict[str, str] | None,
                                       needed: int) -> None:
        """A lone CCS master (this node came back at a new address while another node's CCS took
        over) follows the master the sentinels name: `failover_decision.follow_named_ccs_master`.
        The checks cost nothing on a replica's node (its CCS is not a master) and on the leader's."""
        if named is None or named.get("ip") in (self.cfg.addr, self.cfg.node_name):
            return
        local = await store.replication()
        if local.get("role") != "master":
            return
        host, port = named["ip"], int(named["port"])
        try:
            theirs = await self._probe(host, port, store.password).info("replication")
        except (RedisError, OSError):
            return
        me = {self.cfg.addr, self.cfg.node_name}
        known = any(r.get("ip") in me and int(r.get("port", 0)) == self.cfg.ccs_port
                    for r in await self.sentinel.replicas(CCS_NAME))
        mine, theirs_count = int(local.get("connected_slaves", 0)), int(theirs.get("connected_slaves", 0))
        if not follow_named_ccs_master(me, known, mine, host, str(theirs.get("role")), theirs_count, needed):
            return
        log.warning("this node's CCS is a master no majority follows while the sentinels name %s:%d, "
                    "which a majority does: following it", host, port)
        await store.local.replicaof(host, port)
        self.sentinel.forget_masters()

    def _master_to_follow(self, state: ClusterState, bdb_uid: int, known: dict[str, dict[str, str]],
                          current: set[str]) -> tuple[str, int] | None:
        """Where a shard of this node that is (re)started must replicate from; None = start as master.
        Sentinel's view wins once it monitors the database at an address a node has now; before
        that (or when the sentinel remembers an address no node has any more), the placement's."""
        bdb = state.bdbs[bdb_uid]
        seen = known.get(bdb.name)
        mine = (self.cfg.node_name, self.cfg.addr)
        if seen is not None and int(seen.get("port", 0)) == bdb.port and seen["ip"] in current:
            return None if seen["ip"] in mine else (seen["ip"], bdb.port)
        master = next((s for s in state.shards_of(bdb_uid) if s.role == "master"), None)
        if master is None:
            return None
        node = state.nodes.get(master.node_uid)
        if node is None or node.uid == (self.membership.node_uid if self.membership else -1):
            return None
        return (node.addr, bdb.port)

    async def _restart_plan(
        self, state: ClusterState, me: int, wanted: list[WantedShard]
    ) -> tuple[list[WantedShard], set[int]]:
        """Keep a stopped master shard of an existing replicated database from coming back as
        master while another shard holds a copy (see recluster.node.restart). That covers a shard
        that ran on this volume and one placed here before this node came back on an empty volume
        (a pod without persistence): both would start empty. Returns the plan and the databases
        whose shard is held back for now."""
        plan: list[WantedShard] = []
        held: set[int] = set()
        now = time.monotonic()
        for shard, bdb, master in wanted:
            if (master is not None or not bdb.replication or bdb.status not in EXISTING
                    or self.shards.process_running(bdb.uid)):
                self._held_since.pop(bdb.uid, None)
                plan.append((shard, bdb, master))
                continue
            peers, silent = await self._probe_peers(state, me, bdb)
            since = self._held_since.setdefault(bdb.uid, now)
            decision = restart_decision(peers, self.shards.holds_data(bdb), now - since, RESTART_HOLD_S,
                                        silent=silent)
            if decision.action == "hold":
                if since == now:
                    log.info("shard of %s stopped while master: %s before restarting it", bdb.name,
                             decision.reason)
                await self._promote_replica(bdb.name)
                held.add(bdb.uid)
                plan.append((shard, bdb, master))
                continue
            self._held_since.pop(bdb.uid, None)
            if decision.action == "take_over" and decision.peer is not None:
                log.warning("shard of %s: %s", bdb.name, decision.reason)
                try:
                    await command(self._probe(decision.peer, bdb.port, bdb.authentication_redis_pass),
                                  "REPLICAOF", "NO", "ONE")
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
                client = self._probe(node.addr, bdb.port, bdb.authentication_redis_pass)
                info = await client.info("replication")
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

    async def _promote_replica(self, name: str) -> None:
        """SENTINEL FAILOVER on this node's sentinel, else on a peer's (ours may have just restarted
        and not reached the replica yet); at most every RESTART_FAILOVER_RETRY_S."""
        now = time.monotonic()
        if now - self._promotion_requested.get(name, -RESTART_FAILOVER_RETRY_S) < RESTART_FAILOVER_RETRY_S:
            return
        self._promotion_requested[name] = now
        mine = (self.cfg.node_name, self.cfg.addr)
        targets = [(self.cfg.addr, self.cfg.sentinel_port)]
        targets += [(p.host, p.sentinel_port) for p in (self.membership.peers if self.membership else [])
                    if p.name not in mine and p.host not in mine]
        for host, port in targets:
            client = aioredis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1,
                                    decode_responses=True, retry=no_retry())
            try:
                await command(client, "SENTINEL", "FAILOVER", name)
                log.info("asked the sentinel at %s to promote the replica of %s", host, name)
                return
            except (RedisError, OSError) as exc:
                log.info("the sentinel at %s cannot promote the replica of %s yet: %s", host, name, exc)
            finally:
                await client.aclose()

    def _remember_peers(self, state: ClusterState) -> None:
        assert self.membership is not None
        peers = [peer_of(n) for n in sorted(state.nodes.values(), key=lambda n: n.uid)]
        if peers != self.membership.peers:
            self.membership.peers = peers
            self.membership.save(self.cfg.data_dir)

    # ---- leader loop ---------------------------------------------------------------------------

    async def _leader_loop(self) -> None:
        async def lead() -> None:
            self._settled = False  # a node that becomes the leader looks at once
            if self.store and self.bootstrap.state == "completed" and await self.store.is_master():
                await self.leader_tick()

        while True:
            await one_pass("leader loop", lead)
            await wait_or_wake(self.wake, self.cfg.settled_tick_s if self._settled else self.cfg.tick_s)

    async def _sentinel_events(self) -> None:
        """Wake the leader loop on +switch-master so new roles reach the CCS at once, and drop the
        shared reading of SENTINEL MASTERS on any change of a master's state (see
        `sentinel.MASTERS_MAX_AGE_S`)."""
        while True:
            client = aioredis.Redis(host=self.cfg.addr, port=self.cfg.sentinel_port, socket_connect_timeout=1,
                                    decode_responses=True, retry=no_retry())
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe("+switch-master", "+sdown", "+odown", "-sdown", "-odown")
                    self.sentinel.forget_masters()  # events before this subscription were missed
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.sentinel.forget_masters()
                            self._shards_checked = (-1, 0.0)
                            if message["channel"].startswith("-"):
                                continue
                            log.info("sentinel event %s %s", message["channel"], message["data"])
                            self.wake.set()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                await asyncio.sleep(1)
            finally:
                await client.aclose()

    def _probe(self, host: str, port: int, password: str | None) -> aioredis.Redis:
        key = (host, port)
        client = self._probe_clients.get(key)
        if client is None or client.connection_pool.connection_kwargs.get("password") != password:
            client = aioredis.Redis(host=host, port=port, password=password, socket_timeout=1,
                                    socket_connect_timeout=1, decode_responses=True, retry=no_retry())
            self._probe_clients[key] = client
        return client

    async def _observe(self, state: ClusterState) -> Observation:
        assert self.store is not None
        now = time.monotonic()
        nodes = list(state.nodes.values())

        async def node_up(node: NodeRecord) -> bool:
            if node.name == self.cfg.node_name:
                return True
            try:
                return bool(await self._probe(node.addr, node.ccs_port, self.store.password if self.store
                                              else None).ping())
            except (RedisError, OSError):
                return False

        up_flags = await asyncio.gather(*(node_up(n) for n in nodes))
        up = {n.uid for n, ok in zip(nodes, up_flags, strict=True) if ok}
        back = []
        for node in nodes:
            if node.uid in up:
                if self._down_since.pop(node.uid, None) is not None:
                    back.append(node.uid)
            else:
                self._down_since.setdefault(node.uid, now)
        if back:  # a restart it announced is over: a later loss without notice gets the short grace
            with contextlib.suppress(RedisError, OSError):
                await self.store.forget_restarts(back)
        grace = state.cluster.replica_move_grace_s(self.cfg.replica_move_grace_s)
        restart_grace = max(grace or 0.0, self.cfg.restart_grace_s)
        restarting = (await self.store.announced_restarts(restart_grace + 60.0)
                      if self._down_since and grace is not None else set())
        evacuate_down = nodes_to_evacuate(self._down_since, now, grace, restarting, restart_grace)
        masters: dict[str, tuple[str, int]] = {}
        for name, entry in (await self.sentinel.masters()).items():
            flags = entry.get("flags", "")
            if "o_down" not in flags and "s_down" not in flags:
                masters[name] = (entry["ip"], int(entry["port"]))
        alive: dict[int, bool] = {}
        in_sync: set[int] = set()
        config_ok: dict[int, bool] = {}

        async def probe_shard(shard_uid: int) -> None:
            shard = state.shards[shard_uid]
            bdb = state.bdbs.get(shard.bdb_uid)
            node = state.nodes.get(shard.node_uid)
            if bdb is None or node is None or node.uid not in up:
                alive[shard_uid] = False
                return
            client = self._probe(node.addr, bdb.port, bdb.authentication_redis_pass)
            try:
                # one round trip a shard: 200 shards every tick were most of the leader's CPU
                async with client.pipeline(transaction=False) as pipe:
                    pipe.info("replication")
                    pipe.config_get("maxmemory", "maxmemory-policy")
                    info, conf = await pipe.execute()
                alive[shard_uid] = True
                if info.get("role") == "slave" and info.get("master_link_status") == "up":
                    in_sync.add(shard_uid)
                config_ok[shard_uid] = (conf.get("maxmemory") == str(bdb.memory_size)
                                        and conf.get("maxmemory-policy") == bdb.eviction_policy)
            except (RedisError, OSError):
                alive[shard_uid] = False

        await asyncio.gather(*(probe_shard(uid) for uid in list(state.shards)))
        resolved = self._addresses.moved(nodes, up, self.cfg.node_name, self.cfg.addr,
                                         await self._confirmed_addresses(state, up))
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
                           resolved_addr=resolved, failover_armed=armed)

    async def _confirmed_addresses(self, state: ClusterState, up: set[int]) -> dict[int, str]:
        """The new addresses nodes announced (down at their recorded one) where their CCS answers
        with the cluster's CCS password."""
        assert self.store is not None
        try:
            announced = await self.store.announced_addresses()
        except RedisError:
            return {}
        confirmed: dict[int, str] = {}
        for uid, addr in announced.items():
            node = state.nodes.get(uid)
            if node is None or node.uid in up or addr == node.addr or node.name == self.cfg.node_name:
                continue
            with contextlib.suppress(RedisError, OSError):
                if await self._probe(addr, node.ccs_port, self.store.password).ping():
                    confirmed[uid] = addr
        return confirmed

    async def _failover_armed(self, state: ClusterState, up: set[int], alive: dict[int, bool]) -> set[int]:
        """The pending replicated databases, with every shard running, that every live node's
        sentinel is ready to fail over (see `sentinel.failover_armed`)."""
        live = [n for n in state.nodes.values() if n.uid in up]
        armed = set()
        for bdb in state.bdbs.values():
            own = state.shards_of(bdb.uid)
            if bdb.status != "pending" or not bdb.replication or not own \
                    or not all(alive.get(s.uid) for s in own):
                continue
            try:
                answers = await asyncio.gather(*(
                    failover_armed(self._probe(n.addr, n.sentinel_port, None), bdb.name, len(live) - 1)
                    for n in live))
            except (RedisError, OSError):
                continue
            if all(answers):
                armed.add(bdb.uid)
        return armed

    async def leader_tick(self) -> None:
        assert self.store is not None and self.membership is not None
        state = await self.store.read_local()
        if state is None:
            return
        obs = await self._observe(state)
        me = self.membership.node_uid

        def change(st: ClusterState) -> tuple[list[str], list[int], bool, list[int]]:
            before = {s.uid: s.min_replicas_to_write for s in st.shards.values()}
            changes = sync_roles(st, obs) + sync_status(st, obs) + min_replicas(st, obs) + bdb_status(st, obs)
            plan = plan_repair(st, obs)
            changes += apply_plan(st, plan)
            removal_changes, handover = progress_removals(st, me)
            changes += removal_changes
            lowered = [s.uid for s in st.shards.values()
                       if s.min_replicas_to_write < before.get(s.uid, 0)]
            return changes, plan.failover, handover, lowered

        trial = state.model_copy(deep=True)
        changes, failovers, handover, _ = change(trial)
        self._settled = not (changes or failovers or handover) and settled(state, obs)
        if changes:
            changes, failovers, handover, lowered = await self.store.write(change, "record observed state")
            for line in changes:
                log.info("leader: %s", line)
            await self._lower_min_replicas(lowered)
        state = self.store.last_state or state
        if (failovers or handover) and not await self.store.confirm_majority(len(state.nodes)):
            now = time.monotonic()
            if now - self._unconfirmed_logged < FAILOVER_RETRY_S:
                return
            self._unconfirmed_logged = now
            log.warning("leader: not requesting the planned failover of %s: a majority of the nodes does "
                        "not confirm this leader now (cut off from them?)",
                        ", ".join([state.bdbs[u].name for u in failovers if u in state.bdbs]
                                  + ([CCS_NAME] if handover else [])))
            return
        for bdb_uid in failovers:
            failing = state.bdbs.get(bdb_uid)
            if failing is not None:
                await self._request_failover(failing.name)
        if handover:
            await self._request_failover(CCS_NAME)

    async def _lower_min_replicas(self, shard_uids: list[int]) -> None:
        """Apply a lowered min-replicas-to-write at once (the owning node would within a tick) so a
        database whose replica died is writable again as soon as the majority decided it."""
        state = self.store.last_state if self.store else None
        if state is None:
            return
        for uid in shard_uids:
            shard = state.shards.get(uid)
            if shard is None:
                continue
            bdb, node = state.bdbs.get(shard.bdb_uid), state.nodes.get(shard.node_uid)
            if bdb is None or node is None:
                continue
            with contextlib.suppress(RedisError, OSError):
                await self._probe(node.addr, bdb.port, bdb.authentication_redis_pass).config_set(
                    "min-replicas-to-write", shard.min_replicas_to_write)

    async def _request_failover(self, name: str) -> None:
        now = time.monotonic()
        if now - self._failover_requested.get(name, 0) < FAILOVER_RETRY_S:
            return
        self._failover_requested[name] = now
        try:
            await self.sentinel.failover(name)
            log.info("leader: planned failover of %s requested", name)
        except RedisError as exc:
            log.info("leader: failover of %s not possible yet: %s", name, exc)

    # ---- helpers for the API -------------------------------------------------------------------

    async def state(self) -> ClusterState:
        if self.store is None:
            raise ApiError(406, "not_bootstrapped", "this node does not belong to a cluster yet")
        state = await self.store.read()
        if state is None:
            raise ApiError(503, "not_ready", "this node has not received the cluster state yet")
        return state

    async def is_leader(self) -> bool:
        return self.store is not None and await self.store.is_master()

    async def leader_url(self) -> str | None:
        if self.store is None:
            return None
        addr = await self.store.leader_addr()
        state = self.store.last_state or await self.store.read_local()
        if addr is None or state is None:
            return None
        node = state.node_by_name(addr[0])
        port = node.api_port if node else self.cfg.api_port
        return f"https://{node.name if node else addr[0]}:{port}"

    async def ready(self) -> tuple[bool, str]:
        if self.membership is None or self.store is None:
            return False, "not a member of a cluster"
        if self.bootstrap.state != "completed":
            return False, f"bootstrap is '{self.bootstrap.state}'"
        if not await self.store.in_sync():
            return False, "the configuration store replica is not in sync with the leader"
        if not self.shards_ready:
            return False, "not every shard placed on this node runs"
        return True, "ok"


class BootstrapFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


async def port_closed(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1)
    except (OSError, TimeoutError):
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


def peer_of(node: NodeRecord) -> Peer:
    return Peer(node.name, node.ccs_port, node.sentinel_port, node.api_port, node.addr)


def total_memory() -> int:
    try:
        for line in open("/proc/meminfo").read().splitlines():  # noqa: SIM115
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0

