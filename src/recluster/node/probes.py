"""The daemon's connections to other processes' ports: cached clients of shards, CCS replicas and
sentinels (one per address, remade when the password changes), and a bare TCP check."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from recluster.clients.redis_retry import no_retry


class Probes:
    """Clients with short timeouts and no retry: a probe that fails is an observation, not an error.
    One per loop (each runs on its own event loop or task set); closed with `close`."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int], aioredis.Redis] = {}

    def client(self, host: str, port: int, password: str | None) -> aioredis.Redis:
        key = (host, port)
        client = self._clients.get(key)
        if client is None or client.connection_pool.connection_kwargs.get("password") != password:
            client = aioredis.Redis(host=host, port=port, password=password, socket_timeout=1,
                                    socket_connect_timeout=1, decode_responses=True, retry=no_retry())
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def one_off(host: str, port: int) -> aioredis.Redis:
    """A client for a single call to a peer's sentinel (the caller closes it)."""
    return aioredis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1,
                          decode_responses=True, retry=no_retry())


async def port_closed(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1)
    except (OSError, TimeoutError):
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False
