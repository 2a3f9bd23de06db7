"""The cluster configuration store (CCS): a redis-server on every node, master on the leader.

The whole cluster state is one versioned JSON document under one key. Only the leader writes it,
one change at a time, and a change counts only when a majority of nodes hold it: the master refuses
writes without enough replicas (`min-replicas-to-write`), and every write is followed by WAIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from recluster.api.quorum import majority
from recluster.clients.redis_retry import no_retry
from recluster.node.config import NodeConfig
from recluster.node.errors import ApiError
from recluster.node.processes import ManagedProcess, write_private
from recluster.node.records import ClusterState
from recluster.node.sentinel import command

log = logging.getLogger(__name__)

STATE_KEY = "recluster:state"
# a digest of the document under STATE_KEY, set with it by the same script: a reader learns whether
# the state changed without fetching the document (90 KiB at 100 databases, on every REST read)
DIGEST_KEY = "recluster:state-digest"
# node uid -> the address the node says it has now (written by the node on the leader's CCS, read by
# the leader, which checks it before recording it: see addresses.AddressWatch)
ADDRESS_KEY = "recluster:addresses"
RESTART_KEY = "recluster:restarting"  # node uid -> when (unix time) it announced a planned restart
RESTART_WAIT_MS = 500  # the announcement's acknowledgement: brief, the hand-off has its own deadline
# The state replaced only if it is still what the change was computed from (ARGV[1]), its digest
# with it (ARGV[3]); atomic, and on the connection the WAIT that follows counts from
COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""
# written (and acknowledged by a majority) before the leader acts outside the store: see
# CcsStore.confirm_majority
HEARTBEAT_KEY = "recluster:leader-heartbeat"
WAIT_TIMEOUT_MS = 3000
# a replica that has not acknowledged for this long does not count toward the majority
REPLICA_MAX_LAG_S = 3

T = TypeVar("T")


class NoQuorum(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(503, "cluster_no_quorum", message)


class NotLeader(Exception):
    pass


class CcsServer:
    """The local CCS redis-server process."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.dir = cfg.data_dir / "ccs"
        self.conf = self.dir / "ccs.conf"
        self.process = ManagedProcess("ccs", [cfg.ccs_binary, str(self.conf)], self.dir / "ccs.pid",
                                      str(self.conf), self.dir / "ccs.log")

    def write_config(self, password: str, leader: tuple[str, int] | None, min_replicas: int) -> None:
        lines = [
            f"bind {self.cfg.addr}",
            f"port {self.cfg.ccs_port}",
            "protected-mode no",
            "daemonize no",
            f"dir {self.dir}",
            'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
            "appendonly yes",
            "appendfsync always",
            'save ""',
            f"replica-announce-ip {self.cfg.addr}",
            f"min-replicas-to-write {min_replicas}",
            f"min-replicas-max-lag {REPLICA_MAX_LAG_S}",
            "repl-timeout 10",
            f'requirepass "{password}"',
            f'masterauth "{password}"',
        ]
        if leader is not None:
            lines.append(f"replicaof {leader[0]} {leader[1]}")
        write_private(self.conf, "\n".join(lines) + "\n")

    def start(self, password: str, leader: tuple[str, int] | None, min_replicas: int) -> None:
        if self.process.running():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_config(password, leader, min_replicas)
        self.process.start()


class CcsStore:
    """Reads and writes of the cluster state."""

    def __init__(self, cfg: NodeConfig, password: str) -> None:
        self.cfg = cfg
        self.password = password
        self.local = aioredis.Redis(retry=no_retry(), host=cfg.addr, port=cfg.ccs_port, password=password,
                                    socket_timeout=2, socket_connect_timeout=1, decode_responses=True)
        self._master: aioredis.Redis | None = None
        self._master_addr: tuple[str, int] | None = None
        self._write_lock = asyncio.Lock()
        # Writes go through one connection of their own: WAIT counts the replicas that acknowledged
        # the last write *of its connection*, and on a pooled client another task's connection
        # (whose last write the replicas had long acknowledged) answered at once, confirming a
        # write no replica had: a leader cut off from the others saw its changes "acknowledged"
        self._writer = aioredis.Redis(retry=no_retry(), host=cfg.addr, port=cfg.ccs_port, password=password,
                                      socket_timeout=WAIT_TIMEOUT_MS / 1000 + 2, socket_connect_timeout=1,
                                      decode_responses=True, single_connection_client=True)
        self.last_state: ClusterState | None = None
        self.node_count = 0  # members in the last state read, for the quorum rule
        # This leader's writes from this version on were stored here but not acknowledged by a
        # majority (WAIT timed out: cut off from the others?), and the last state that was: the node
        # loop acts on that one until a majority acknowledges again (see `read`)
        self._unconfirmed_from: int | None = None
        self._confirmed_raw: bytes | str | None = None
        # the last document read, its digest and its parsed state: a read of the same revision
        # (every REST read, every loop pass at rest) fetches and parses nothing. Readers must not
        # change what they get.
        self._parsed: tuple[bytes | str, str, ClusterState] | None = None

    async def close(self) -> None:
        await self.local.aclose()
        await self._writer.aclose()
        if self._master is not None:
            await self._master.aclose()

    async def replication(self) -> dict[str, str]:
        info = await self.local.info("replication")
        return {str(k): str(v) for k, v in info.items()}

    async def is_master(self) -> bool:
        try:
            return (await self.replication()).get("role") == "master"
        except RedisError:
            return False

    async def leader_addr(self) -> tuple[str, int] | None:
        """The CCS master this node follows (itself when it is the leader)."""
        repl = await self.replication()
        if repl.get("role") == "master":
            return (self.cfg.addr, self.cfg.ccs_port)
        return (repl["master_host"], int(repl["master_port"]))

    async def in_sync(self) -> bool:
        try:
            repl = await self.replication()
        except RedisError:
            return False
        return repl.get("role") == "master" or repl.get("master_link_status") == "up"

    def _master_client(self, addr: tuple[str, int]) -> aioredis.Redis:
        if self._master_addr != addr or self._master is None:
            self._master = aioredis.Redis(host=addr[0], port=addr[1], password=self.password,
                                          socket_timeout=2, socket_connect_timeout=1,
                                          decode_responses=True, retry=no_retry())
            self._master_addr = addr
        return self._master

    async def read(self, prefer_leader: bool = True) -> ClusterState | None:
        """The state from the leader's store when it answers, else from the local replica."""
        raw: bytes | str | None = None
        if prefer_leader:
            try:
                addr = await self.leader_addr()
                if addr is not None and addr[0] not in (self.cfg.addr, self.cfg.node_name):
                    self._unconfirmed_from = None  # not the leader (any more): nothing of ours pending
                    raw = await self._fetch(self._master_client(addr))
                    if raw is None:
                        raw = await self._fetch(self.local)
                else:
                    raw = self._confirmed(await self._fetch(self.local))
            except (RedisError, OSError, KeyError):
                raw = None
        if raw is None:
            try:
                raw = await self._fetch(self.local)
            except RedisError:
                return self.last_state
        if raw is None:
            return None
        state = self.parse(raw)
        self.last_state = state
        self.node_count = len(state.nodes)
        return state

    async def _fetch(self, client: aioredis.Redis) -> bytes | str | None:
        """The stored document: the one parsed last when the store's digest says it is unchanged (a
        short GET), else fetched. A store written before digests existed has none: fetched."""
        if self._parsed is not None and await client.get(DIGEST_KEY) == self._parsed[1]:
            return self._parsed[0]
        return await client.get(STATE_KEY)

    def parse(self, raw: bytes | str) -> ClusterState:
        """The state of a stored document, parsed once per revision (shared: read-only)."""
        if self._parsed is not None and self._parsed[0] == raw:
            return self._parsed[2]
        state = ClusterState.model_validate_json(raw)
        self._parsed = (raw, state_digest(raw), state)
        return state

    async def _leader_client(self) -> aioredis.Redis:
        """A client of the leader's CCS (this node's own when it leads or no leader is known): where a
        node leaves word for the leader (its address, a planned restart)."""
        leader = await self.leader_addr()
        return self.local if leader is None or leader[0] == self.cfg.addr else self._master_client(leader)

    async def announce_address(self, node_uid: int, addr: str) -> None:
        """Tell the leader where this node is now (a pod back with a new IP): no DNS on its side."""
        client = await self._leader_client()
        await client.hset(ADDRESS_KEY, str(node_uid), addr)

    async def announce_restart(self, node_uid: int) -> None:
        """Tell the leader this node stops for a planned restart (SIGTERM), so its replicas wait for
        it longer. Acknowledged by a replica of the CCS when there is one (the leader may be this
        node, about to hand the CCS over): on one connection, so WAIT counts this write."""
        client = await self._leader_client()
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset(RESTART_KEY, str(node_uid), f"{time.time():.3f}")
            pipe.execute_command("WAIT", 1, RESTART_WAIT_MS)
            await pipe.execute()

    async def announced_restarts(self, within_s: float) -> set[int]:
        """The nodes that announced a planned restart in the last `within_s` seconds (leader)."""
        raw = await self.local.hgetall(RESTART_KEY)
        now = time.time()
        restarting = set()
        for uid, when in raw.items():
            with contextlib.suppress(ValueError):
                if str(uid).isdigit() and now - float(when) <= within_s:
                    restarting.add(int(uid))
        return restarting

    async def forget_restarts(self, node_uids: list[int]) -> None:
        """The leader saw these nodes back: their announced restarts are over."""
        await self.local.hdel(RESTART_KEY, *(str(uid) for uid in node_uids))

    async def restarted(self, node_uid: int) -> None:
        """Tell the leader this node runs again: the restart it announced is over, and a loss without
        notice from now on gets the short grace (the leader may never have seen it down: a pod
        deleted and back within its probes, or a new leader since)."""
        client = await self._leader_client()
        await client.hdel(RESTART_KEY, str(node_uid))

    async def announced_addresses(self) -> dict[int, str]:
        raw = await self.local.hgetall(ADDRESS_KEY)
        return {int(uid): str(addr) for uid, addr in raw.items() if str(uid).isdigit()}

    def _confirmed(self, raw: bytes | str | None) -> bytes | str | None:
        """The leader's own state as its node may act on it: not a version a majority has not
        acknowledged. A leader cut off from the others stores a change and then fails to confirm
        it (the store refuses writes only once its replicas lag 3 s); acting on it, its node would
        lower `min-replicas-to-write` on its own masters (their replicas look down from there), and
        they would take writes no replica sees, lost after the heal."""
        if raw is None or self._unconfirmed_from is None:
            return raw
        if self.parse(raw).version < self._unconfirmed_from:
            self._unconfirmed_from = None  # not ours: the store was replaced since
            return raw
        return self._confirmed_raw

    async def read_local(self) -> ClusterState | None:
        return await self.read(prefer_leader=False)

    async def good_replicas(self) -> int:
        """Replicas online and acknowledging within the allowed lag."""
        info = await self.local.info("replication")
        count = 0
        for key, value in info.items():
            if (str(key).startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
                    and int(value.get("lag", 99)) <= REPLICA_MAX_LAG_S - 1):
                count += 1
        return count

    async def initialize(self, state: ClusterState) -> None:
        """The first write of a new cluster (one node: nothing to wait for)."""
        state.version = 1
        raw = state.model_dump_json()
        await self.local.mset({STATE_KEY: raw, DIGEST_KEY: state_digest(raw)})

    async def write(self, change: Callable[[ClusterState], T], what: str) -> T:
        """Apply `change` to a copy of the state and store it, acknowledged by a majority of nodes;
        NoQuorum (nothing changed) when a majority cannot confirm it. Leader only."""
        async with self._write_lock:
            if not await self.is_master():
                raise NotLeader(what)
            raw = await self.local.get(STATE_KEY)
            if raw is None:
                raise ApiError(503, "not_bootstrapped", "the cluster has no state yet")
            state = ClusterState.model_validate_json(raw)
            members = len(state.nodes)
            needed = majority(members) - 1  # replicas that must confirm: with the leader, a majority
            if needed:
                good = await self.good_replicas()
                if good < needed:
                    raise NoQuorum(
                        f"cannot {what}: the cluster has lost its majority ({good + 1} of {members} "
                        f"nodes reachable, {needed + 1} needed); nothing was changed")
            result = change(state)
            state.version += 1
            # readable here from the SET on, before the majority acknowledges it: held back from
            # this node's own reads until it does (see `read`)
            first_unconfirmed = self._unconfirmed_from is None
            if first_unconfirmed:
                self._unconfirmed_from, self._confirmed_raw = state.version, raw
            new_raw = state.model_dump_json()
            try:
                swapped = await self._writer.eval(COMPARE_AND_SET, 2, STATE_KEY, DIGEST_KEY, raw, new_raw,
                                                  state_digest(new_raw))
            except ResponseError as exc:
                if first_unconfirmed:
                    self._unconfirmed_from = None  # nothing was written
                if "NOREPLICAS" in str(exc):
                    raise NoQuorum(f"cannot {what}: the cluster has lost its majority (the store "
                                   "refused the write); nothing was changed") from exc
                raise
            if not swapped:
                if first_unconfirmed:
                    self._unconfirmed_from = None
                raise ApiError(409, "busy", f"cannot {what}: the cluster state changed; retry")
            if needed:
                acked = int(await command(self._writer, "WAIT", needed, WAIT_TIMEOUT_MS))
                if acked < needed:
                    raise NoQuorum(
                        f"cannot confirm '{what}': only {acked + 1} of {members} nodes acknowledged "
                        f"within {WAIT_TIMEOUT_MS} ms ({needed + 1} needed); the change may be lost")
            self._unconfirmed_from = None  # acknowledged: so is every earlier write
            self._parsed = (new_raw, state_digest(new_raw), state)
            self.last_state = state
            self.node_count = len(state.nodes)
            return result

    async def confirm_majority(self, members: int) -> bool:
        """Whether a majority of the `members` nodes follows this leader now: a heartbeat written and
        acknowledged by them, as a state write would be. A leader cut off from the others keeps
        reading its own store and believing its replicas in sync for a while (a replica's link stays
        "up" until its timeout); what it decides from there must not leave the store, least of all a
        failover: its sentinel would promote a stale replica and, with the newer epoch, win after the
        heal over the master the majority chose (`bench/chaos.py --seed 5 --kinds node-isolate` lost
        WAIT-confirmed writes that way)."""
        async with self._write_lock:
            if not await self.is_master():
                return False
            needed = majority(members) - 1  # replicas that must acknowledge: with the leader, a majority
            try:
                await self._writer.incr(HEARTBEAT_KEY)
                if needed and int(await command(self._writer, "WAIT", needed, WAIT_TIMEOUT_MS)) < needed:
                    return False
                self._unconfirmed_from = None  # acknowledged: so is every earlier write
                return True
            except ResponseError as exc:
                if "NOREPLICAS" in str(exc):
                    return False
                raise

    async def set_min_replicas(self, count: int) -> None:
        await self.local.config_set("min-replicas-to-write", count)


def state_digest(raw: bytes | str) -> str:
    """What identifies a stored document: two stores with the same version number may hold different
    states (a leader's unconfirmed write, replaced after a failover), never the same digest."""
    data = raw.encode() if isinstance(raw, str) else raw
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def utcnow() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ccs_dir(data_dir: Path) -> Path:
    return data_dir / "ccs"
