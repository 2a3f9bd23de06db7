"""The node daemon: the parts of a node's runtime, made once and started together, and the small
service the HTTP layer (REST API, console, metrics) talks to.

Parts (each keeps its own state): membership (recluster.node.bootstrap: create, join, admit, resume,
leave), the node loop (node_loop: run what the cluster state places on this node), the leader loop
(leader_loop with observe: turn what Sentinel and the shards report into the cluster state), the
failover watch (failover_watch: its own thread) and the SIGTERM hand-off (handoff). What they share
is in recluster.node.runtime.

Ownership: each node runs its own CCS replica, sentinel and shards (node loop); only the leader (the
node whose CCS is master) decides placement and writes the state (leader loop, REST writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from redis.exceptions import RedisError, ResponseError

from recluster.clients.peer_tls import peer_verification
from recluster.node.acl_secrets import AclSecrets
from recluster.node.auth import CredentialCheck
from recluster.node.bootstrap import Bootstrap
from recluster.node.ccs import CcsStore
from recluster.node.config import NodeConfig, engine_table
from recluster.node.errors import ApiError
from recluster.node.failover_watch import FailoverWatch
from recluster.node.handoff import announce_restart, hand_over
from recluster.node.leader_loop import LeaderLoop
from recluster.node.loop_watch import LoopWatch
from recluster.node.node_loop import NodeLoop
from recluster.node.records import ClusterState
from recluster.node.request_models import BootstrapRequest, JoinRequest
from recluster.node.runtime import BootstrapStatus, NodeRuntime
from recluster.node.sentinel import follow_events
from recluster.node.views import RenderedList, bdb_view

log = logging.getLogger(__name__)

T = TypeVar("T")
# The sentinel events the node's loops follow: a switch wakes the leader loop (new roles reach the
# CCS at once); any change of a master's state drops the shared reading of SENTINEL MASTERS (see
# `sentinel.MASTERS_MAX_AGE_S`) and has the node loop ask its shards again.
SENTINEL_EVENTS = ("+switch-master", "+sdown", "+odown", "-sdown", "-odown")


class NodeDaemon:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.rt = NodeRuntime(cfg)
        self._http = httpx.AsyncClient(verify=peer_verification(cfg.cert_dir),
                                       timeout=httpx.Timeout(30.0, connect=3.0))
        self.membership_ops = Bootstrap(self.rt, self._http)
        self.node_loop = NodeLoop(self.rt, self.membership_ops)
        self.leader_loop = LeaderLoop(self.rt)
        self.failover_watch = FailoverWatch(cfg, self.rt.sentinel_access, self.rt.hurry, self.rt.tls_names,
                                            self.rt.database_tls.client_kwargs())
        self.credentials = CredentialCheck()
        self.bdb_list = RenderedList(lambda state: [
            bdb_view(state, bdb, engine_table(cfg))
            for bdb in sorted(state.bdbs.values(), key=lambda b: b.uid)])
        self.loop_watch = LoopWatch()
        self._tasks: list[asyncio.Task[None]] = []

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        resume = self.rt.membership is not None
        self._tasks.append(asyncio.create_task(self._run(resume)))

    async def _run(self, resume: bool) -> None:
        if resume:
            try:
                await self.membership_ops.resume()
            except Exception:
                log.exception("resuming cluster membership failed; the node loop retries")
        self.failover_watch.start(self._placed_state)
        await asyncio.gather(self.node_loop.run(), self.leader_loop.run(), self._follow_sentinel(),
                             self.loop_watch.run())

    def _placed_state(self) -> tuple[ClusterState, int] | None:
        """The cluster state the node loop last read, and this node's uid (for the failover watch)."""
        member = self.rt.member()
        if member is None or member[1].last_state is None:
            return None
        return member[1].last_state, member[0].node_uid

    async def _follow_sentinel(self) -> None:
        def on_event(channel: str, data: str) -> None:
            self.rt.sentinel.forget_masters()
            self.node_loop.recheck_shards()
            if not channel.startswith("-"):
                log.info("sentinel event %s %s", channel, data)
                self.rt.wake.set()

        await asyncio.gather(
            follow_events(self.cfg.addr, self.cfg.sentinel_port, SENTINEL_EVENTS,
                          lambda: self.rt.sentinel.forget_masters(), on_event),
            follow_events(self.cfg.addr, self.cfg.sentinel_tls_port, SENTINEL_EVENTS,
                          lambda: self.rt.sentinel.forget_masters(), on_event,
                          tls=self.rt.database_tls.client_kwargs(), wanted=lambda: self.rt.tls_names.any))

    async def stop(self, handoff_timeout: float) -> None:
        rt = self.rt
        if rt.membership is not None and rt.store is not None:
            await announce_restart(rt.store, rt.membership.node_uid)
        if rt.membership is not None and handoff_timeout > 0:
            try:
                await asyncio.wait_for(hand_over(rt), handoff_timeout)
            except (TimeoutError, RedisError, OSError) as exc:
                log.warning("handing master shards over before shutdown did not finish: %s", exc)
        self.membership_ops.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.failover_watch.stop()  # before the processes: no failover asked while they stop
        log.info("stopping this node's shards, sentinel and configuration store")
        started = time.monotonic()
        await rt.stop_processes()
        log.info("stopped in %.1f s", time.monotonic() - started)
        await rt.close()
        self.leader_loop.cancel()
        await self._http.aclose()

    # ---- the service of the HTTP layer ----------------------------------------------------------

    @property
    def bootstrap(self) -> BootstrapStatus:
        return self.rt.bootstrap

    @property
    def node_uid(self) -> int | None:
        return self.rt.membership.node_uid if self.rt.membership else None

    @property
    def bootstrapped(self) -> bool:
        """A member of a cluster whose bootstrap completed."""
        return self.rt.member() is not None

    @property
    def shards_ready(self) -> bool:
        return self.node_loop.shards_ready

    def begin_bootstrap(self, action: str, request: BootstrapRequest) -> None:
        self.membership_ops.begin(action, request)

    def acl_secrets(self) -> AclSecrets:
        return self.rt.acl_secrets()

    async def admit(self, request: JoinRequest) -> dict[str, Any]:
        return await self.membership_ops.admit(request)

    def _store(self) -> CcsStore:
        if self.rt.store is None:
            raise ApiError(406, "not_bootstrapped", "this node does not belong to a cluster yet")
        return self.rt.store

    async def state(self) -> ClusterState:
        state = await self._store().read()
        if state is None:
            raise ApiError(503, "not_ready", "this node has not received the cluster state yet")
        return state

    async def recent_state(self) -> ClusterState:
        """The last state this node read (read now when it has none): for checks that may lag a
        tick, such as credentials."""
        store = self._store()
        state = store.last_state or await store.read()
        if state is None:
            raise ApiError(503, "not_ready", "this node has not received the cluster state yet")
        return state

    async def write(self, change: Callable[[ClusterState], T], what: str) -> T:
        """Apply `change` to the cluster state (leader only, acknowledged by a majority) and have the
        leader loop act on it at once."""
        result = await self._store().write(change, what)
        self.rt.wake.set()
        return result

    async def fail_over(self, name: str, members: int) -> None:
        """A planned failover of database `name` (leader only: forwarded like every write): asked of
        the database's sentinel once a majority of the `members` nodes confirms this leader, as the
        leader's own planned failovers are."""
        if not await self._store().confirm_majority(members):
            raise ApiError(503, "cluster_no_quorum", f"cannot fail '{name}' over: a majority of the nodes "
                           "does not confirm this leader now; nothing was changed")
        try:
            await self.rt.sentinel.failover(name)
        except ResponseError as exc:
            busy = "INPROG" in str(exc)
            raise ApiError(409, "failover_in_progress" if busy else "no_replica_in_sync",
                           f"cannot fail '{name}' over now: a failover of it runs already" if busy else
                           f"cannot fail '{name}' over now: no replica is in sync and known to the "
                           "sentinels yet; retry") from exc
        self.rt.wake.set()

    async def leader_addr(self) -> tuple[str, int] | None:
        """The CCS address of the leader (None before bootstrap)."""
        return await self.rt.store.leader_addr() if self.rt.store is not None else None

    async def is_leader(self) -> bool:
        return self.rt.store is not None and await self.rt.store.is_master()

    async def leader_url(self) -> str | None:
        store = self.rt.store
        if store is None:
            return None
        addr = await store.leader_addr()
        state = store.last_state or await store.read_local()
        if addr is None or state is None:
            return None
        node = state.node_by_name(addr[0])
        port = node.api_port if node else self.cfg.api_port
        return f"https://{node.name if node else addr[0]}:{port}"

    async def forward(self, method: str, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """A request passed on to the leader's REST API (with the nodes' own CA)."""
        return await self._http.request(method, url, content=content, headers=headers)

    async def ready(self) -> tuple[bool, str]:
        member = self.rt.member()
        if self.rt.membership is None or self.rt.store is None:
            return False, "not a member of a cluster"
        if member is None:
            return False, f"bootstrap is '{self.rt.bootstrap.state}'"
        if not await member[1].in_sync():
            return False, "the configuration store replica is not in sync with the leader"
        if not self.node_loop.shards_ready:
            return False, "not every shard placed on this node runs"
        return True, "ok"
