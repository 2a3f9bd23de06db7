"""Fixtures of the backup tests: real redis-server processes (redis_servers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.backup.redis_servers import RedisServer, redis_servers


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start a redis-server: redis_server(name, dbfilename=..., seed=<an RDB to load>)."""
    yield from redis_servers(tmp_path)
