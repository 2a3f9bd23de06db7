"""A replicated REDB created on Redis 7.0 is upgraded in place to Redis 8.0 by raising
`spec.redisVersion`, with a writer (SET, then WAIT 1) running through the database's Service: the
replica is restarted on 8.0 first, a planned failover makes it the master, then the old master is
restarted on 8.0. At the end master and replica answer INFO with 8.0, status.version says 8.0, every
WAIT-confirmed write reads back, and the longest gap between confirmed writes is printed. A downgrade
back to 7.0 is then refused at admission, naming the field and why."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest
import redis
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.test_redb_engines import _engine, _replica_address
from tests.e2e.redb.test_redb_failover import Database, replicated_db

from recluster.clients.write_probe import connect, read_back
from recluster.local.harness import apply_redb, eventually, get, redb_manifest, redb_status

pytestmark = pytest.mark.e2e

__all__ = ["replicated_db"]  # the fixture, shared with test_redb_failover

NAME = "upg"


class Writer:
    """SET k<i> k<i>, then WAIT 1 1000, through the Service, reconnecting after any error; the keys
    WAIT confirmed and when."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.confirmed: list[tuple[str, float]] = []
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        connection: redis.Redis | None = None
        i = 0
        while not self.stop.is_set():
            try:
                if connection is None:
                    connection = connect(self.db.address, self.db.port, self.db.password, timeout=2)
                key = f"u{i}"
                i += 1
                connection.set(key, key)
                if connection.execute_command("WAIT", 1, 1000) >= 1:
                    self.confirmed.append((key, time.monotonic()))
            except (redis.RedisError, OSError):
                self.errors += 1
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.05)
        if connection is not None:
            connection.close()

    def longest_gap(self, since: float, until: float) -> float:
        times = [since] + [t for _, t in self.confirmed if since <= t <= until] + [until]
        return max(b - a for a, b in itertools.pairwise(times))


def test_raising_redis_version_upgrades_the_database_in_place(
    redb_env: RedbEnv, replicated_db: Callable[..., Database]
) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    db = replicated_db(NAME, redisVersion="7.0")
    eventually("status.version 7.0", lambda: redb_status(cluster, ns, NAME).get("version") == "7.0",
               timeout=60)
    writer = Writer(db)
    writer.thread.start()
    messages: set[str] = set()
    try:
        eventually("a first confirmed write", lambda: writer.confirmed, timeout=60)
        time.sleep(1.0)
        started = time.monotonic()
        assert apply_redb(cluster, ns, redb_manifest(NAME, replication=True, redisVersion="8.0")) == ""

        def upgraded() -> bool:
            status = redb_status(cluster, ns, NAME)
            messages.update(c.get("message", "") for c in status.get("conditions") or []
                            if c.get("type") == "Progressing")
            return bool(status.get("version") == "8.0" and status.get("status") == "active")

        eventually("status.version 8.0 and the database active", upgraded, timeout=120, interval=0.3)
        took = time.monotonic() - started
        time.sleep(1.0)  # writes on the upgraded master
        ended = time.monotonic()
    finally:
        writer.stop.set()
        writer.thread.join(10)

    assert any(m.startswith("upgrading the engine from 7.0 to 8.0") for m in messages), messages
    role, running = _engine(db.address, db.port, db.password, "redis_version")
    assert role == "master" and running.startswith("8.0."), (role, running)
    host, port = _replica_address(db)
    role, running = _engine(host, port, db.password, "redis_version")
    assert role == "slave" and running.startswith("8.0."), (role, running)
    keys = [key for key, _ in writer.confirmed]
    assert len(keys) > 20, len(keys)
    got = read_back(db.address, db.port, db.password, keys, timeout=10)
    assert got is not None, "the master could not be read through the Service"
    assert got[1] == [], f"{len(got[1])} of {len(keys)} WAIT-confirmed writes lost"

    refused = apply_redb(cluster, ns, redb_manifest(NAME, replication=True, redisVersion="7.0"))
    assert "spec.redisVersion" in refused and "a downgrade to 7.0 is refused" in refused, refused
    assert redb_status(cluster, ns, NAME).get("version") == "8.0"
    # latest: the cluster's default, which the database now runs: accepted, and nothing moves
    assert apply_redb(cluster, ns, redb_manifest(NAME, replication=True, redisVersion="latest")) == ""

    def seen_latest() -> dict[str, object] | None:
        body = get(cluster, ns, "redb", NAME)
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body["metadata"]["generation"]
        return status if current and status.get("specStatus") == "Valid" else None

    status = eventually("the operator to accept redisVersion: latest", seen_latest, timeout=60)
    assert status.get("status") == "active" and status.get("version") == "8.0", status
    print(f"engine upgrade 7.0 -> 8.0 on the REC: {took:.1f} s from the patch to status.version 8.0; "
          f"longest gap between WAIT-confirmed writes {writer.longest_gap(started, ended):.2f} s; "
          f"{len(keys)} confirmed, none lost; {writer.errors} write errors meanwhile")
