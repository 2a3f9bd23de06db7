"""The daemon's connections to other processes' ports: cached clients of shards, CCS replicas and
sentinels (one per address, remade when the password changes), and a bare TCP check."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.credentials import CredentialProvider

from recluster.clients.redis_retry import no_retry
from recluster.node.records import BdbRecord


class Probes:
    """Clients with short timeouts and no retry: a probe that fails is an observation, not an error.
    One per loop (each runs on its own event loop or task set); closed with `close`."""

    def __init__(self, tls: dict[str, Any] | None = None) -> None:
        self._clients: dict[tuple[str, int, bool], aioredis.Redis] = {}
        self._tls = tls or {}  # redis-py arguments of a TLS connection (database_tls.client_kwargs)

    def client(self, host: str, port: int, password: str | None, tls: bool = False,
               username: str | None = None) -> aioredis.Redis:
        """A client of a plaintext port, or with `tls` of a TLS database's shard or sentinel."""
        key = (host, port, tls)
        client = self._clients.get(key)
        kwargs = client.connection_pool.connection_kwargs if client is not None else {}
        if client is None or kwargs.get("password") != password or kwargs.get("username") != username:
            client = aioredis.Redis(host=host, port=port, username=username, password=password,
                                    socket_timeout=1,
                                    socket_connect_timeout=1, decode_responses=True, retry=no_retry(),
                                    **(self._tls if tls else {}))
            self._clients[key] = client
        return client

    def shard(self, host: str, bdb: BdbRecord) -> aioredis.Redis:
        """A client of `bdb`'s shard on the node at `host` (TLS when the database speaks TLS)."""
        user, password = bdb.login("control")
        return self.client(host, bdb.port, password, bdb.tls(), user)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def one_off(host: str, port: int, tls: dict[str, Any] | None = None,
            admin: CredentialProvider | None = None) -> aioredis.Redis:
    """A client for a single call to a peer's sentinel (the caller closes it); `tls`: the TLS
    sentinel's connection arguments; `admin`: the sentinels' admin credentials, for a call that
    changes something (see sentinel_access)."""
    return aioredis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1,
                          decode_responses=True, retry=no_retry(), credential_provider=admin, **(tls or {}))


async def port_closed(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1)
    except (OSError, TimeoutError):
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False
