"""Helpers of the node tests that write through Sentinel."""

from __future__ import annotations

import asyncio
import time

import redis


async def write_confirmed(client: redis.Redis, count: int, timeout_s: float = 60) -> list[str]:
    """Write keys k0, k1, ... until `count` of them were confirmed by a replica (WAIT 1); the keys
    confirmed. Writes refused meanwhile (the replica still attaching) are retried."""
    deadline = time.monotonic() + timeout_s
    confirmed: list[str] = []
    while len(confirmed) < count:
        assert time.monotonic() < deadline, f"writes were not confirmed by a replica within {timeout_s:.0f} s"
        key = f"k{len(confirmed)}"
        try:
            await asyncio.to_thread(client.set, key, key)
            if await asyncio.to_thread(client.execute_command, "WAIT", 1, 1000) >= 1:
                confirmed.append(key)
        except redis.RedisError:
            await asyncio.sleep(0.2)
    return confirmed


def closed_by_server(connection: redis.Connection, *command: str) -> bool:
    """Whether the server closed this one connection (`command`, PING by default, fails on it
    without a new connection being made: a deleted ACL user's open connection, for example)."""
    try:
        connection.send_command(*(command or ("PING",)))
        connection.read_response()
    except redis.exceptions.AuthenticationError:
        raise
    except (redis.exceptions.ConnectionError, OSError):
        return True
    return False
