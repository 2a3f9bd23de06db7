"""A control-loop Redis call fails within its own timeout: redis-py's default retries (10, with
backoff) turned a 0.2 s timeout into seconds, and a crashed node stalled the leader's tick."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from recluster.clients.redis_retry import no_retry, no_retry_sync


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers, as a hung server does."""
    server = socket.create_server(("127.0.0.1", 0))  # the kernel completes handshakes; nobody reads
    yield server.getsockname()[1]
    server.close()


def test_an_async_call_to_a_silent_server_fails_within_its_timeout(silent_port: int) -> None:
    async def attempt(**kwargs: object) -> float:
        client = aioredis.Redis(host="127.0.0.1", port=silent_port, socket_timeout=0.2, **kwargs)  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(redis.RedisError):
            await client.ping()
        await client.aclose()
        return time.monotonic() - started

    assert asyncio.run(attempt(retry=no_retry())) < 0.6  # redis-py's default retries took ~7 s here


def test_a_sync_call_to_a_silent_server_fails_within_its_timeout(silent_port: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=silent_port, socket_timeout=0.2, retry=no_retry_sync())
    started = time.monotonic()
    with pytest.raises(redis.RedisError):
        client.ping()
    client.close()
    assert time.monotonic() - started < 0.6
