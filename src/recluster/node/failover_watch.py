"""The node's watch over the masters of its databases' replicas: asks its own sentinel for
`SENTINEL FAILOVER` when a majority of the sentinels see such a master down (the rule and why:
`recluster.node.failover_decision`). It runs in a thread of its own, with its own event loop and its
own connections to the sentinels, woken at once by its sentinel's `+sdown`: a busy pass of the
daemon's loop (a node that becomes the CCS leader probes every shard of the cluster) must never delay
a failover. In one 100-database node stop, while the watch shared the daemon's loop, a node asked
for its last 15 failovers 4.6 s after its others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from recluster.clients.redis_retry import no_retry
from recluster.node.config import NodeConfig
from recluster.node.database_tls import renew_contexts
from recluster.node.failover_decision import MasterView, masters_to_fail_over, suspects
from recluster.node.loops import one_pass, wait_or_wake
from recluster.node.records import ClusterState
from recluster.node.sentinel import Hurry, command, follow_events, masters_by_name
from recluster.node.sentinel_access import SentinelAccess
from recluster.node.sentinels import Sentinels, TlsNames

log = logging.getLogger(__name__)

# Woken at once by the sentinel's +sdown; at rest a look every 5 s only in case an event was missed
# (each look costs the sentinel a SENTINEL MASTERS reply of every monitor: at 100 databases, a look
# every second raised its PING p99 at rest); every 0.25 s while a master is suspected and the peers'
# sentinels have not all agreed yet (theirs go s_down up to a PING period later)
REST_PERIOD_S = 5.0
SUSPECT_PERIOD_S = 0.25
# A peer's sentinel that does not answer within this counts as not agreeing (a crashed node's
# never answers; waiting its full timeout would delay every failover by it)
PEER_TIMEOUT_S = 0.5
# A refused request (no good replica yet, a failover already running) is asked again this often
RETRY_S = 0.5
# A look slower than this while a master is suspected is logged with where its time went
SLOW_LOOK_S = 1.0
# The sentinel events that wake the watch at once
EVENTS = ("+sdown", "+odown", "+switch-master")
STOP_TIMEOUT_S = 5.0

# The cluster state the node loop last read and this node's uid, None before the node is a member:
# read from the watch's thread (a reference read: the store replaces its last state, never changes it)
StateSource = Callable[[], tuple[ClusterState, int] | None]
class PeerSentinels(NamedTuple):
    """A peer node's two sentinels (hashable: the peers' answers are kept by it)."""

    addr: str
    plain: int
    tls: int

    def port(self, tls: bool) -> int:
        return self.tls if tls else self.plain


class FailoverWatch:
    def __init__(self, cfg: NodeConfig, access: SentinelAccess, hurry: Hurry, tls_names: TlsNames,
                 tls: dict[str, Any]) -> None:
        self.cfg = cfg
        self.access = access  # its requests to the peers' sentinels log in as their admin
        self.hurry = hurry
        self.tls_names = tls_names  # the names the TLS sentinels monitor (the node loop keeps it)
        self.tls = tls  # redis-py arguments of a connection to a TLS sentinel
        # made in the watch's thread: asyncio objects and clients belong to the loop that uses them
        self.sentinel: Sentinels | None = None
        self.wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._peers: dict[tuple[str, int], aioredis.Redis] = {}
        self._trust_generation = 0  # tls_names.trust_generation its TLS clients were made with
        self._asked: dict[str, float] = {}
        self._delegated: dict[str, float] = {}  # name -> until when a peer's sentinel runs its failover
        # the last refusal logged per database and sentinel (not every half second)
        self._refusals: dict[tuple[str, str], str] = {}
        self._suspected = False
        self._timings: dict[str, float] = {}  # the last look's steps, seconds

    # ---- the thread -----------------------------------------------------------------------------

    def start(self, state: StateSource) -> None:
        if self._thread is not None:
            return
        started = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(state, started),),
                                        name="failover-watch", daemon=True)
        self._thread.start()
        started.wait(STOP_TIMEOUT_S)

    async def stop(self) -> None:
        """Cancel the watch's loop and wait (bounded) for its thread to end."""
        thread, loop, task = self._thread, self._loop, self._task
        if thread is None:
            return
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed
                loop.call_soon_threadsafe(task.cancel)
        await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
        if thread.is_alive():
            log.warning("failover watch: its thread did not stop within %.0f s", STOP_TIMEOUT_S)
        self._thread = None

    async def _main(self, state: StateSource, started: threading.Event) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self.wake = asyncio.Event()
        self.sentinel = Sentinels(self.cfg, self.access, self.hurry, self.tls_names, self.tls)
        started.set()
        events = asyncio.create_task(self._events())
        try:
            await self.run(state)
        except asyncio.CancelledError:
            pass
        finally:
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events
            await self.close()

    async def _events(self) -> None:
        """Wake the watch on its sentinel's `+sdown` (and a switch), reconnecting for ever; also
        right after each subscription (events before it were missed)."""
        wake = self.wake
        assert wake is not None
        await asyncio.gather(
            follow_events(self.cfg.addr, self.cfg.sentinel_port, EVENTS, wake.set,
                          lambda _channel, _data: wake.set()),
            # the TLS sentinel's, which runs while the cluster has a TLS database
            follow_events(self.cfg.addr, self.cfg.sentinel_tls_port, EVENTS, wake.set,
                          lambda _channel, _data: wake.set(), tls=self.tls,
                          wanted=lambda: self.tls_names.any))

    # ---- the loop -------------------------------------------------------------------------------

    async def run(self, state: StateSource) -> None:
        assert self.wake is not None

        async def look() -> None:
            await self._follow_trust()
            current = state()
            if current is not None:
                await self.tick(*current)

        while True:
            self._suspected, self._timings = False, {}
            started = time.monotonic()
            await one_pass("failover watch", look)
            took = time.monotonic() - started
            if self._suspected and took > SLOW_LOOK_S:
                steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in self._timings.items())
                log.warning("failover watch: a look took %.2f s while a master is suspected down (%s; "
                            "the rest: the INFO period change and waiting for the event loop)", took, steps)
            await wait_or_wake(self.wake, SUSPECT_PERIOD_S if self._suspected else REST_PERIOD_S)

    async def _follow_trust(self) -> None:
        """After a change of the node's TLS trust list (a user's certificate, a CA rotation) the
        watch's TLS clients load it again."""
        generation = self.tls_names.trust_generation
        if generation == self._trust_generation or self.sentinel is None:
            return
        self._trust_generation = generation
        await renew_contexts([self.sentinel.tls.client, *self._peers.values()])

    async def tick(self, state: ClusterState, me: int) -> list[str]:
        """One look; the databases whose failover was requested."""
        assert self.sentinel is not None
        local = {state.bdbs[s.bdb_uid].name for s in state.shards_on(me)
                 if s.bdb_uid in state.bdbs and state.bdbs[s.bdb_uid].replication}
        if not local:
            await self.sentinel.hurry(False)
            return []
        step = time.monotonic()
        own = views(await self.sentinel.masters(max_age=0))  # a decision: never an old reading
        self._timings["own sentinel"] = time.monotonic() - step
        suspected = suspects(local, own, {self.cfg.addr, self.cfg.node_name})
        await self.sentinel.hurry(bool(suspected))
        if not suspected:
            return []
        self._suspected = True
        peers = [PeerSentinels(n.addr, n.sentinel_port, n.sentinel_tls_port)
                 for n in state.nodes.values() if n.uid != me]
        step = time.monotonic()
        decided, answers = await self._agreed(suspected, own, peers, state.majority())
        now = time.monotonic()
        self._timings["peers"] = now - step
        decided = [name for name in decided if now - self._asked.get(name, -RETRY_S) >= RETRY_S
                   and now >= self._delegated.get(name, 0.0)]
        for name in decided:
            self._asked[name] = now
        await asyncio.gather(*(self._fail_over(name, own[name], answers) for name in decided))
        self._timings["failovers asked"] = time.monotonic() - now
        return decided

    async def _agreed(
        self, suspected: list[str], own: Mapping[str, MasterView], peers: list[PeerSentinels], majority: int
    ) -> tuple[list[str], dict[PeerSentinels, dict[str, MasterView]]]:
        """The suspects a majority agrees on, as soon as the answers in hand show it (the peer on the
        lost node never answers), and the peers' answers."""
        tls = any(name in self.tls_names for name in suspected)
        tasks = {asyncio.create_task(self._peer_view(peer, tls)): peer for peer in peers}
        answered: dict[PeerSentinels, dict[str, MasterView]] = {}
        decided: list[str] = masters_to_fail_over(suspected, own, [], majority)
        deadline = time.monotonic() + PEER_TIMEOUT_S
        pending = set(tasks)
        try:
            while pending and len(decided) < len(suspected):
                done, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()),
                                                   return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    break
                answered.update({tasks[t]: view for t in done if (view := t.result()) is not None})
                decided = masters_to_fail_over(suspected, own, list(answered.values()), majority)
        finally:
            for task in pending:
                task.cancel()
        return decided, answered

    def _peer(self, host: str, port: int, tls: bool = False) -> aioredis.Redis:
        client = self._peers.get((host, port))
        if client is None:
            client = aioredis.Redis(host=host, port=port, socket_timeout=PEER_TIMEOUT_S,
                                    socket_connect_timeout=PEER_TIMEOUT_S, decode_responses=True,
                                    retry=no_retry(), credential_provider=self.access,
                                    **(self.tls if tls else {}))
            self._peers[(host, port)] = client
        return client

    def _peer_for(self, peer: PeerSentinels, name: str) -> aioredis.Redis:
        """The peer's sentinel that monitors `name`."""
        tls = name in self.tls_names
        return self._peer(peer.addr, peer.port(tls), tls)

    async def _peer_view(self, peer: PeerSentinels, tls: bool) -> dict[str, MasterView] | None:
        """What the peer's sentinels see: the plaintext one's masters, and the TLS one's when a TLS
        database is suspected."""
        try:
            seen: dict[str, MasterView] = {}
            for kind in (False, True) if tls else (False,):
                reply = await command(self._peer(peer.addr, peer.port(kind), kind), "SENTINEL", "MASTERS")
                seen.update(views(masters_by_name(reply)))
            return seen
        except (RedisError, OSError):
            return None

    async def _fail_over(self, name: str, view: MasterView,
                         answers: Mapping[PeerSentinels, Mapping[str, MasterView]]) -> None:
        """Ask this node's sentinel; when it knows no good replica (a sentinel learns replicas only
        from the master's INFO, so one restarted shortly before the crash may not know this node's
        replica at its new address), ask, one at a time, the peers' sentinels that see the master down
        too, and leave the failover to the first that starts it. One sentinel at a time: a peer's
        running failover is never doubled by this node's."""
        assert self.sentinel is not None
        try:
            await self.sentinel.failover(name)
        except ResponseError as exc:
            self._refused(name, view, "this node's sentinel", exc)
            if "NOGOODSLAVE" not in str(exc):  # INPROG: one runs already
                return
        else:
            self._forget_refusals(name)
            log.warning("the master of %s at %s:%d is down for a majority of the sentinels: this node's "
                        "sentinel fails it over", name, view.ip, view.port)
            return
        for peer_sentinels, seen in answers.items():
            host = peer_sentinels.addr
            peer = seen.get(name)
            if peer is None or not peer.down or peer.address != view.address:
                continue
            try:
                await command(self._peer_for(peer_sentinels, name), "SENTINEL", "FAILOVER", name)
            except (RedisError, OSError) as exc:
                self._refused(name, view, f"the sentinel at {host}", exc)
                continue
            self._forget_refusals(name)
            self._delegated[name] = time.monotonic() + 2 * self.cfg.failover_timeout_ms / 1000
            log.warning("the master of %s at %s:%d is down for a majority of the sentinels and this "
                        "node's sentinel knows no good replica: the sentinel at %s fails it over", name,
                        view.ip, view.port, host)
            return

    def _forget_refusals(self, name: str) -> None:
        for key in [k for k in self._refusals if k[0] == name]:
            del self._refusals[key]

    def _refused(self, name: str, view: MasterView, who: str, exc: Exception) -> None:
        if self._refusals.get((name, who)) != str(exc):
            self._refusals[(name, who)] = str(exc)
            log.info("failover of %s (master %s:%d down for a majority) not started by %s: %s", name,
                     view.ip, view.port, who, exc)

    async def close(self) -> None:
        for client in self._peers.values():
            await client.aclose()
        self._peers.clear()
        if self.sentinel is not None:
            await self.sentinel.close()


def views(masters: Mapping[str, Mapping[str, str]]) -> dict[str, MasterView]:
    """A sentinel's masters ({name: SENTINEL MASTERS row}) as {name: MasterView}."""
    return {name: MasterView.from_entry(entry) for name, entry in masters.items()}
