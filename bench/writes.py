"""Writes the benchmarks share (a module next to them: run as `python bench/<name>.py`, bench/ is on
the import path)."""

from __future__ import annotations

import redis


def write_on(host: str, port: int, password: str, key: str, timeout: float = 2) -> str | None:
    """One write through a fresh connection; the pod of the server that took it (its announced
    name is the pod's DNS name), or None when the write failed."""
    connection = redis.Redis(
        host=host, port=port, password=password, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        if not connection.set(key, "1"):
            return None
        name = connection.config_get("replica-announce-ip").get("replica-announce-ip") or ""
        return str(name).split(".")[0]
    except (redis.RedisError, OSError):
        return None
    finally:
        connection.close()
