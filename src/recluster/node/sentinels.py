"""This node's two sentinels seen as one by the loops: the plaintext sentinel (the CCS and plaintext
databases, port 8001) and the TLS sentinel (TLS databases, 8002), which runs only while the cluster
has a TLS database. A sentinel speaks TLS to every instance it monitors or to none
(redis/redis#11275), so a database's sentinel is chosen by its `tls_mode`; names are unique across
both (the CCS and every database have their own name), so a name says which one to ask."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError

from recluster.node.config import NodeConfig
from recluster.node.records import ClusterState
from recluster.node.sentinel import Hurry, Monitor, SentinelControl
from recluster.node.sentinel_access import SentinelAccess

log = logging.getLogger(__name__)


class TlsNames:
    """The names monitored by the TLS sentinels, from the last state the node loop read: shared by
    the loops of the node (one thread) and the failover watch (another). `trust_generation` changes
    when the node's TLS trust list (or its own certificate) changes: a client made before keeps the
    old one (redis-py loads a connection's SSL context once, for all its reconnections), so each
    loop renews its TLS clients when it sees a new generation (database_tls.renew_contexts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: frozenset[str] = frozenset()
        self._state: object = None
        self.trust_generation = 0

    def follow(self, state: ClusterState) -> None:
        if state is self._state:
            return
        names = frozenset(b.name for b in state.bdbs.values() if b.tls())
        with self._lock:
            self._names, self._state = names, state

    def __contains__(self, name: object) -> bool:
        return name in self._names

    @property
    def any(self) -> bool:
        return bool(self._names)

    def trust_changed(self) -> None:
        with self._lock:
            self.trust_generation += 1


class Sentinels:
    """The runtime control of both sentinels, with SentinelControl's interface: a call about one name
    goes to that name's sentinel, a reading of all masters merges both. One per event loop."""

    def __init__(self, cfg: NodeConfig, access: SentinelAccess, hurry: Hurry, tls_names: TlsNames,
                 tls_client: dict[str, Any]) -> None:
        self.plain = SentinelControl(cfg, access, hurry)
        self.tls = SentinelControl(cfg, access, hurry, port=cfg.sentinel_tls_port, tls=tls_client)
        self.tls_names = tls_names
        self.client = self.plain.client  # the plaintext sentinel's: bootstrap and start-up checks
        self._merged: tuple[object, object, dict[str, dict[str, str]]] | None = None

    def of(self, name: str) -> SentinelControl:
        return self.tls if name in self.tls_names else self.plain

    def _both(self) -> Iterable[SentinelControl]:
        return (self.plain, self.tls) if self.tls_names.any else (self.plain,)

    async def close(self) -> None:
        await self.plain.close()
        await self.tls.close()

    async def masters(self, max_age: float | None = None) -> dict[str, dict[str, str]]:
        """{name: SENTINEL MASTERS row} of both sentinels (read-only, shared; the same object while
        neither reading changed, which the node loop's at-rest check relies on). A TLS sentinel that
        does not answer (starting, or restarted for a new certificate) leaves its databases out:
        the plaintext databases' decisions must never wait for it."""
        kwargs = {} if max_age is None else {"max_age": max_age}
        plain = await self.plain.masters(**kwargs)
        if not self.tls_names.any:
            return plain
        try:
            tls = await self.tls.masters(**kwargs)
        except (RedisError, OSError) as exc:
            log.debug("the TLS sentinel does not answer: %s", type(exc).__name__)
            return plain
        if self._merged is None or self._merged[0] is not plain or self._merged[1] is not tls:
            self._merged = (plain, tls, {**plain, **tls})
        return self._merged[2]

    def forget_masters(self) -> None:
        self.plain.forget_masters()
        self.tls.forget_masters()

    async def replicas(self, name: str) -> list[dict[str, str]]:
        return await self.of(name).replicas(name)

    async def master_addr(self, name: str) -> tuple[str, int] | None:
        return await self.of(name).master_addr(name)

    async def failover(self, name: str) -> None:
        await self.of(name).failover(name)

    async def ensure(self, wanted: list[Monitor], known: dict[str, dict[str, str]] | None = None,
                     addresses: set[str] | None = None) -> None:
        """Each sentinel monitors exactly the wanted names that are its own."""
        for control in self._both():
            mine = [m for m in wanted if self.of(m.name) is control]
            own_known = None if known is None else {
                name: row for name, row in known.items() if self.of(name) is control}
            await control.ensure(mine, own_known, addresses)

    async def hurry(self, suspected: bool) -> None:
        await self.plain.hurry(suspected)
        if self.tls_names.any:
            with contextlib.suppress(RedisError, OSError):  # see `masters`
                await self.tls.hurry(suspected)

    async def reset(self, pattern: str = "*") -> None:
        for control in self._both():
            await control.reset(pattern)
