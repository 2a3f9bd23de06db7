"""The rigger's subscriptions to every node pod's Sentinel `+switch-master` channel: a failover is
known here the moment a sentinel announces it, before the cluster's REST API records it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recluster.api.ports import SENTINEL_PORT
from recluster.clients.redis_retry import no_retry

log = logging.getLogger(__name__)

SWITCH_MASTER = "+switch-master"


class SentinelWatch:
    def __init__(self, on_switch_master: Callable[[bytes | str], None]) -> None:
        self.on_switch_master = on_switch_master
        self.watchers: dict[str, asyncio.Task[None]] = {}

    def follow(self, ips: set[str]) -> None:
        """Subscribe to the sentinels at `ips` (the node pods' now), and to no other."""
        for ip in list(self.watchers):
            if ip not in ips:
                self.watchers.pop(ip).cancel()
        for ip in ips:
            if ip not in self.watchers or self.watchers[ip].done():
                self.watchers[ip] = asyncio.create_task(self._watch(ip), name=f"sentinel {ip}")

    def cancel(self) -> None:
        for task in self.watchers.values():
            task.cancel()

    async def _watch(self, ip: str) -> None:
        """Follow one Sentinel's announcements, reconnecting for ever."""
        while True:
            client = aioredis.Redis(retry=no_retry(), host=ip, port=SENTINEL_PORT, socket_connect_timeout=2.0)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(SWITCH_MASTER)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.on_switch_master(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("sentinel %s: %s", ip, type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(1.0)
