"""The rigger's subscriptions to every node pod's Sentinel `+switch-master` channel: a failover is
known here the moment a sentinel announces it, before the cluster's REST API records it. Each node
has two sentinels: the plaintext one (8001) and, for TLS databases, the TLS one (8002), followed
once the cluster has a TLS database and its CA is known (verified against it by the pod's address)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recluster.api.ports import SENTINEL_PORT, SENTINEL_TLS_PORT
from recluster.clients.redis_retry import no_retry

log = logging.getLogger(__name__)

SWITCH_MASTER = "+switch-master"


class SentinelWatch:
    def __init__(self, on_switch_master: Callable[[bytes | str], None]) -> None:
        self.on_switch_master = on_switch_master
        self.watchers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.tls_ca: str | None = None  # the CA the TLS watchers verify with

    def follow(self, ips: set[str], tls_ca: str | None = None) -> None:
        """Subscribe to the sentinels at `ips` (the node pods' now), and to no other; to their TLS
        sentinels too when `tls_ca` (the cluster's database CA) is given."""
        wanted = {(ip, SENTINEL_PORT) for ip in ips}
        if tls_ca:
            wanted |= {(ip, SENTINEL_TLS_PORT) for ip in ips}
        renewed = tls_ca != self.tls_ca  # a rotated CA: the TLS watchers connect again with it
        self.tls_ca = tls_ca
        for key in list(self.watchers):
            if key not in wanted or (renewed and key[1] == SENTINEL_TLS_PORT):
                self.watchers.pop(key).cancel()
        for ip, port in wanted:
            if (ip, port) not in self.watchers or self.watchers[(ip, port)].done():
                tls: dict[str, Any] = {"ssl": True, "ssl_ca_data": tls_ca, "ssl_check_hostname": True} \
                    if port == SENTINEL_TLS_PORT else {}
                self.watchers[(ip, port)] = asyncio.create_task(self._watch(ip, port, tls),
                                                                name=f"sentinel {ip}:{port}")

    def cancel(self) -> None:
        for task in self.watchers.values():
            task.cancel()

    async def _watch(self, ip: str, port: int, tls: dict[str, Any]) -> None:
        """Follow one Sentinel's announcements, reconnecting for ever."""
        while True:
            client = aioredis.Redis(retry=no_retry(), host=ip, port=port, socket_connect_timeout=2.0,
                                    **tls)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(SWITCH_MASTER)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.on_switch_master(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("sentinel %s:%d: %s", ip, port, type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(1.0)
