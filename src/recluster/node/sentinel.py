"""The node's redis-sentinel (port 8001): the process, and its monitors configured at run time.

Every node configures its own sentinel from the cluster state: the CCS under the name `ccs` and every
database under its name, quorum a majority of nodes. Sentinel rewrites its own config file (it holds
its state: epochs, known sentinels and replicas), so the daemon writes it only once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from recluster.clients.redis_retry import no_retry
from recluster.node.config import NodeConfig
from recluster.node.processes import ManagedProcess, write_private
from recluster.node.sentinel_access import SentinelAccess

log = logging.getLogger(__name__)

CCS_NAME = "ccs"
INFO_PERIOD_MS = 1000
INFO_PERIOD_MAX_MS = 10000  # Redis's own default
INFO_PERIOD_PER_MONITOR_MS = 100
# How old a reading of SENTINEL MASTERS the node and leader loops may use. The reply lists every
# monitor (~60 KB at 100 databases) and a sentinel answers nothing else while it builds it: read
# four times a second per sentinel it was what raised the discovery service's p99 at rest. A
# reading is dropped at once when the sentinel reports an event (`forget_masters`) or this node
# changes its monitors, so a switch is never seen late; the failover watch always reads afresh.
MASTERS_MAX_AGE_S = 2.0


def info_period_ms(monitors: int) -> int:
    """How often Sentinel reads each master's and replica's INFO: every second up to 10 monitors, then
    100 ms per monitor, at most Redis's default 10 s (pure). With `resolve-hostnames` every INFO reply
    costs Sentinel a blocking DNS lookup of the announced name (a master's replica line, a replica's
    master_host); at 100 replicated databases and 1 s that is 200 lookups a second per sentinel, on
    top of the ~200 its peers' hello messages cost, and a single-threaded sentinel that waits on DNS
    answers nothing else (seen: PINGs taking seconds, the node loop's calls timing out, shards left
    unstarted). The price: a sentinel learns a new replica within this period, not 1 s."""
    return max(INFO_PERIOD_MS, min(INFO_PERIOD_MAX_MS, monitors * INFO_PERIOD_PER_MONITOR_MS))


async def command(client: aioredis.Redis, *args: str | int) -> Any:
    """A raw command (redis-py's execute_command is untyped)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


def rows(reply: Any) -> list[dict[str, str]]:
    """SENTINEL MASTERS/REPLICAS/SENTINELS rows (flat lists in RESP2, maps in RESP3) as dicts."""
    out = []
    for row in reply or []:
        entry = dict(zip(row[::2], row[1::2], strict=False)) if isinstance(row, list) else dict(row)
        out.append({str(k): str(v) for k, v in entry.items()})
    return out


def masters_by_name(reply: Any) -> dict[str, dict[str, str]]:
    """A SENTINEL MASTERS reply as {name: row}."""
    return {entry["name"]: entry for entry in rows(reply)}


def healthy(entry: dict[str, str]) -> bool:
    flags = entry.get("flags", "").split(",")
    return "s_down" not in flags and "o_down" not in flags and "disconnected" not in flags


async def failover_armed(client: aioredis.Redis, name: str, peers: int) -> bool:
    """Whether this sentinel could take part in failing `name` over: it monitors it, knows a
    replica that is up, and knows at least `peers` other sentinels that are up."""
    try:
        replicas = rows(await command(client, "SENTINEL", "REPLICAS", name))
        sentinels = rows(await command(client, "SENTINEL", "SENTINELS", name))
    except ResponseError:  # "No such master with that name": not monitored yet
        return False
    return (any(healthy(r) and r.get("master-link-status") == "ok" for r in replicas)
            and sum(healthy(s) for s in sentinels) >= peers)


@dataclass(frozen=True)
class Monitor:
    name: str
    host: str
    port: int
    quorum: int
    password: str | None
    user: str | None = None  # with the password: the user Sentinel logs in to the shards as


def stale(entry: dict[str, str], wanted: Monitor, addresses: set[str] | None) -> bool:
    """Whether Sentinel's master for a monitor sits at an address that no node has any more and does
    not answer there (pure). A master that answers is never moved: it may be a replica Sentinel just
    promoted on a node whose new address the cluster state has not recorded yet."""
    if addresses is None or not entry.get("ip") or entry["ip"] == wanted.host:
        return False
    return entry["ip"] not in addresses and "s_down" in entry.get("flags", "").split(",")


class SentinelServer:
    """A sentinel process of this node: the plaintext one (the CCS and plaintext databases, 8001) or,
    given `tls_directives`, the TLS one (TLS databases, 8002): a sentinel speaks TLS to every
    instance it monitors or to none."""

    def __init__(self, cfg: NodeConfig, access: SentinelAccess,
                 tls_directives: Callable[[], list[str]] | None = None) -> None:
        self.cfg = cfg
        self.access = access
        self.tls_directives = tls_directives
        kind = "sentinel-tls" if tls_directives else "sentinel"
        self.dir = cfg.data_dir / kind
        self.conf = self.dir / "sentinel.conf"
        self.process = ManagedProcess(kind, [cfg.redis_sentinel, str(self.conf)],
                                      self.dir / "sentinel.pid", str(self.conf), self.dir / "sentinel.log")

    @property
    def port(self) -> int:
        return self.cfg.sentinel(self.tls_directives is not None)

    def start(self) -> None:
        if self.process.running():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        listeners = self.tls_directives() if self.tls_directives else [f"port {self.port}"]
        own = {
            **{line.split()[0]: line for line in listeners},
            "bind": f"bind {self.cfg.addr}",
            "dir": f"dir {self.dir}",
            "sentinel announce-ip": f"sentinel announce-ip {self.cfg.addr}",
            # by address, not name: a sentinel resolves names synchronously, and while a cluster DNS
            # server sits on a dead node its lookups hang, the sentinel goes into TILT and fails
            # nothing over (see docs/node-daemon.md); addresses come from the cluster state instead
            "sentinel announce-hostnames": "sentinel announce-hostnames no",
            **self.access.directives(),
        }
        if not self.conf.exists():
            write_private(self.conf, "\n".join([
                *listeners,
                own["bind"],
                "daemonize no",
                "protected-mode no",
                own["dir"],
                'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
                # kept so a config written by an older version (monitors by name) still loads; an
                # address needs no lookup
                "sentinel resolve-hostnames yes",
                own["sentinel announce-hostnames"],
                own["sentinel announce-ip"],
                *self.access.directives().values(),
                "sentinel deny-scripts-reconfig yes",
            ]) + "\n")
        else:
            # Sentinel rewrites this file with what it learned (kept), but the node's own address may
            # have changed since (a pod restarted with a new IP): the listener lines follow the node.
            write_private(self.conf, refresh_directives(self.conf.read_text(), own))
        self.process.start()


def refresh_directives(config: str, directives: dict[str, str]) -> str:
    """`config` with each directive (keyed by its leading words) replaced by the given line (pure)."""
    lines = []
    seen = set()
    for line in config.splitlines():
        key = next((k for k in directives if line == k or line.startswith(k + " ")), None)
        if key is None:
            lines.append(line)
        elif key not in seen:
            lines.append(directives[key])
            seen.add(key)
    lines += [line for key, line in directives.items() if key not in seen]
    return "\n".join(lines) + "\n"


class Hurry:
    """Why the sentinel should read every INFO each second now (see `SentinelControl.hurry`): a
    master suspected down (the failover watch, in a thread of its own) or a replica of this node
    that the sentinel does not list yet (the node loop). Shared by the node loop's SentinelControl,
    which sets the INFO period, and the failover watch's: the node loop's control applies the period
    again whenever `changes` moved."""

    SUSPECTED = "a master suspected down"
    REPLICA_UNKNOWN = "a replica the sentinel does not list yet"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: frozenset[str] = frozenset()
        self.changes = 0

    @property
    def on(self) -> bool:
        return bool(self._reasons)

    @property
    def reasons(self) -> str:
        return ", ".join(sorted(self._reasons))

    def set(self, reason: str, on: bool) -> bool:
        """True when this changed whether to hurry at all."""
        with self._lock:
            reasons = self._reasons | {reason} if on else self._reasons - {reason}
            if reasons == self._reasons:
                return False
            was, self._reasons = bool(self._reasons), reasons
            if was == bool(reasons):
                return False
            self.changes += 1
            return True


class SentinelControl:
    """Runtime configuration of the local sentinel. One per event loop (its client is bound to the
    loop that first used it)."""

    def __init__(self, cfg: NodeConfig, access: SentinelAccess, hurry: Hurry | None = None,
                 port: int | None = None, tls: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        # the node's own control: as the sentinel's admin (sentinel_access)
        self.client = aioredis.Redis(host=cfg.addr, port=port or cfg.sentinel_port, socket_timeout=2,
                                     socket_connect_timeout=1, decode_responses=True, retry=no_retry(),
                                     credential_provider=access, **(tls or {}))
        self._applied: dict[str, Monitor] = {}
        self._info_period = INFO_PERIOD_MS
        self._monitors = 0
        self._hurry = hurry if hurry is not None else Hurry()
        self._hurry_seen = self._hurry.changes
        self._reading: tuple[float, dict[str, dict[str, str]]] | None = None

    async def close(self) -> None:
        await self.client.aclose()

    async def masters(self, max_age: float = MASTERS_MAX_AGE_S) -> dict[str, dict[str, str]]:
        """{name: SENTINEL MASTERS row}, read at most `max_age` seconds ago (0: read now). Callers
        must not change what they get: the reading is shared."""
        now = time.monotonic()
        if self._reading is not None and now - self._reading[0] <= max_age:
            return self._reading[1]
        reading = masters_by_name(await command(self.client, "SENTINEL", "MASTERS"))
        self._reading = (now, reading)
        return reading

    async def _change(self, *args: str | int) -> Any:
        try:
            return await command(self.client, *args)
        finally:
            self.forget_masters()

    def forget_masters(self) -> None:
        """The sentinel's view changed (an event, or this node's own change): read it again."""
        self._reading = None

    async def replicas(self, name: str) -> list[dict[str, str]]:
        return rows(await command(self.client, "SENTINEL", "REPLICAS", name))

    async def master_addr(self, name: str) -> tuple[str, int] | None:
        try:
            reply = await command(self.client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        except RedisError:
            return None
        if not reply:
            return None
        return (str(reply[0]), int(reply[1]))

    async def ensure(self, wanted: list[Monitor], known: dict[str, dict[str, str]] | None = None,
                     addresses: set[str] | None = None) -> None:
        """Monitor exactly `wanted` (by name), with the right quorum, timing and password. A monitor
        whose master is at an address no node has any more (`addresses`: the nodes' current ones;
        pods that came back with new IPs, a whole cluster restarted) is set up again at the wanted
        address: Sentinel would wait for the old address for ever."""
        current = dict(known if known is not None else await self.masters())
        names = {m.name for m in wanted}
        for name in list(current):
            if name not in names:
                log.info("sentinel: removing monitor %s", name)
                await self._change("SENTINEL", "REMOVE", name)
                self._applied.pop(name, None)
                del current[name]
        for mon in wanted:
            if mon.name in current and stale(current[mon.name], mon, addresses):
                log.info("sentinel: %s was monitored at %s, an address no node has now; monitoring it "
                         "at %s", mon.name, current[mon.name].get("ip"), mon.host)
                await self._change("SENTINEL", "REMOVE", mon.name)
                del current[mon.name]
            if mon.name not in current:
                log.info("sentinel: monitoring %s at %s:%d quorum %d", mon.name, mon.host, mon.port,
                         mon.quorum)
                try:
                    await self._change("SENTINEL", "MONITOR", mon.name, mon.host, mon.port, mon.quorum)
                except ResponseError as exc:
                    if "Duplicate" not in str(exc):  # 7.0 says "Duplicate master name.", 6.x "Duplicated ..."
                        raise
                self._applied.pop(mon.name, None)
            elif int(current[mon.name].get("quorum", 0)) != mon.quorum:
                self._applied.pop(mon.name, None)
            if self._applied.get(mon.name) == mon:
                continue
            args: list[str | int] = [
                "quorum", mon.quorum,
                "down-after-milliseconds",
                self.cfg.ccs_down_after_ms if mon.name == CCS_NAME else self.cfg.down_after_ms,
                "failover-timeout", self.cfg.failover_timeout_ms,
                "parallel-syncs", 1,
            ]
            if mon.password:
                args += ["auth-pass", mon.password]
            if mon.user:
                args += ["auth-user", mon.user]
            await self._change("SENTINEL", "SET", mon.name, *args)
            self._applied[mon.name] = mon
        self._monitors = len(wanted)
        await self._apply_info_period()

    async def hurry(self, suspected: bool) -> None:
        """While a master is suspected down, read every instance's INFO every second. Sentinel
        promotes only a replica whose INFO is at most 5 s old once the master is `s_down`, and reads
        a replica every second only once that INFO showed its link down or the master is `o_down`
        (never, for a database: `failover_decision`). With a 10 s period (100 monitors) a
        `SENTINEL FAILOVER` was refused (NOGOODSLAVE) for up to 10 s after a crash.

        Called by the failover watch on every look: while suspected it sets the 1 s period each time
        (a cheap command; the node loop's control, in the other thread, may have just applied the
        slow one); once calm, the node loop's control applies the slow period on its next pass."""
        if self._hurry.set(Hurry.SUSPECTED, suspected) and suspected:
            log.info("sentinel: INFO every %d ms (a master suspected down)", INFO_PERIOD_MS)
        if suspected:
            await command(self.client, "SENTINEL", "DEBUG", "info-period", INFO_PERIOD_MS)

    async def _apply_info_period(self) -> None:
        """Set the INFO period the monitors and the hurry ask for, unless it is set already."""
        changes = self._hurry.changes
        hurried = self._hurry.on
        period = INFO_PERIOD_MS if hurried else info_period_ms(self._monitors)
        if period != self._info_period or changes != self._hurry_seen:
            if period != self._info_period:
                log.info("sentinel: INFO every %d ms (%d monitors%s)", period, self._monitors,
                         f", {self._hurry.reasons}" if hurried else "")
            await command(self.client, "SENTINEL", "DEBUG", "info-period", period)
            self._info_period, self._hurry_seen = period, changes

    async def tune(self) -> None:
        """Sentinel reads a master's INFO (where it learns the replicas) only every 10 s; a master lost
        before its sentinels learned the replica cannot fail over (-failover-abort-no-good-slave).
        Read it every second instead (slower with many monitors: `info_period_ms`, applied by
        `ensure`). A runtime setting: applied after every sentinel start."""
        await command(self.client, "SENTINEL", "DEBUG", "info-period", INFO_PERIOD_MS)
        self._info_period = INFO_PERIOD_MS

    async def reset(self, pattern: str = "*") -> None:
        await self._change("SENTINEL", "RESET", pattern)

    async def failover(self, name: str) -> None:
        await self._change("SENTINEL", "FAILOVER", name)


async def follow_events(host: str, port: int, channels: tuple[str, ...],
                        on_subscribed: Callable[[], None],
                        on_message: Callable[[str, str], None], tls: dict[str, Any] | None = None,
                        wanted: Callable[[], bool] = lambda: True) -> None:
    """Subscribe to a sentinel's event `channels` for ever, reconnecting a second after a failure.
    `on_subscribed` runs after each (re)subscription (events before it were missed), `on_message`
    with (channel, data) for every event. While `wanted()` is false (the TLS sentinel of a cluster
    without TLS databases does not run) nothing is tried: a TLS connection attempt costs ~40 ms of
    CPU in loading the system's CA store, and trying one every second was a daemon's main cost at rest."""
    while True:
        if not wanted():
            await asyncio.sleep(1)
            continue
        client = aioredis.Redis(host=host, port=port, socket_connect_timeout=1, decode_responses=True,
                                retry=no_retry(), **(tls or {}))
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(*channels)
                on_subscribed()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        on_message(str(message["channel"]), str(message["data"]))
        except (RedisError, OSError):
            await asyncio.sleep(1)
        finally:
            await client.aclose()
