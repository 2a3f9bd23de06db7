"""Database statistics from a shard's INFO. Pure."""

from __future__ import annotations

from typing import Any


def _num(info: dict[str, Any], key: str) -> float:
    try:
        return float(info.get(key, 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def keyspace(info: dict[str, Any]) -> tuple[float, float]:
    keys = expires = 0.0
    for name, value in info.items():
        if str(name).startswith("db") and isinstance(value, dict):
            keys += float(value.get("keys", 0))
            expires += float(value.get("expires", 0))
    return keys, expires


def bdb_stats(info: dict[str, Any]) -> dict[str, float]:
    """The public bdb stats fields that a single redis-server's INFO can answer."""
    keys, expires = keyspace(info)
    return {
        "conns": _num(info, "connected_clients"),
        "used_memory": _num(info, "used_memory"),
        "no_of_keys": keys,
        "no_of_expires": expires,
        "instantaneous_ops_per_sec": _num(info, "instantaneous_ops_per_sec"),
        "total_req": _num(info, "total_commands_processed"),
        "read_hits": _num(info, "keyspace_hits"),
        "read_misses": _num(info, "keyspace_misses"),
        "evicted_objects": _num(info, "evicted_keys"),
        "expired_objects": _num(info, "expired_keys"),
        "ingress_bytes": _num(info, "total_net_input_bytes"),
        "egress_bytes": _num(info, "total_net_output_bytes"),
        "total_connections_received": _num(info, "total_connections_received"),
        "mem_frag_ratio": _num(info, "mem_fragmentation_ratio"),
        "pubsub_channels": _num(info, "pubsub_channels"),
        "pubsub_patterns": _num(info, "pubsub_patterns"),
    }
