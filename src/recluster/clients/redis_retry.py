"""One attempt per Redis call in the control loops. redis-py 8 retries a failed connection or a
timeout 10 times with exponential backoff by default: a probe of a node that crashed took 7-15 s
instead of its 1 s timeout, and the leader's whole tick waited on it (a crashed node's shards were
recorded, and a promoted master's `min-replicas-to-write` lowered, about 20 s late). The loops
retry on their next pass; a call here fails within its own timeout."""

from __future__ import annotations

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry


def no_retry() -> AsyncRetry:
    """For `redis.asyncio.Redis(retry=...)`."""
    return AsyncRetry(NoBackoff(), 0)


def no_retry_sync() -> Retry:
    """For `redis.Redis(retry=...)`."""
    return Retry(NoBackoff(), 0)
