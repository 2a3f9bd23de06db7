"""The engines of the image, one replicated database each, on the session's REC: Redis 8.0 (the
default), Redis 7.0 (bookworm's binary) and Valkey 8.1. Each database's master and replica answer INFO
with the engine its redisVersion names, the REC lists the engines (status.bundledDatabaseVersions,
GET /v1/cluster and /v1/nodes), a version the cluster lacks is refused at admission and a move from
Redis to Valkey on a live database is refused; then a planned failover of each through the REST API
(POST /v1/shards/<uid>/actions/failover) keeps every WAIT-confirmed write, and the new master runs
the same engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.e2e.operator.test_operator_lifecycle import cluster_api
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.test_redb_failover import Database, replicated_db

from recluster.clients.cluster_api import ClusterApi
from recluster.clients.write_probe import connect
from recluster.local.harness import apply_redb, eventually, rec_status, redb_manifest, redb_status

pytestmark = pytest.mark.e2e

__all__ = ["replicated_db"]  # the fixture, shared with test_redb_failover

# REDB name -> (redisVersion, INFO field, version prefix)
ENGINES = {
    "eng80": ("8.0", "redis_version", "8.0."),
    "eng70": ("7.0", "redis_version", "7.0."),
    "engvk": ("valkey-8.1", "valkey_version", "8.1."),
}


def _engine(host: str, port: int, password: str, field: str) -> tuple[str, str]:
    """(role, engine version) of the redis-server at host:port."""
    connection = connect(host, port, password, timeout=5)
    try:
        info = connection.info()
    finally:
        connection.close()
    return str(info["role"]), str(info.get(field, ""))


def _replica_address(db: Database) -> tuple[str, int]:
    connection = connect(db.address, db.port, db.password, timeout=5)
    try:
        info = connection.info("replication")
    finally:
        connection.close()
    replica = info["slave0"]
    return str(replica["ip"]), int(replica["port"])


def test_a_database_per_engine_replicates_and_fails_over(
    redb_env: RedbEnv, replicated_db: Callable[..., Database]
) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    bundled = eventually(
        "the REC's bundledDatabaseVersions",
        lambda: rec_status(cluster, ns).get("bundledDatabaseVersions"),
        timeout=120,
    )
    assert bundled == [
        {"dbType": "redis", "version": "8.0", "isDefault": True},
        {"dbType": "redis", "version": "7.0", "isDefault": False},
        {"dbType": "valkey", "version": "8.1", "isDefault": False},
    ]
    api_cluster = cluster_api(cluster, ns, ClusterApi.cluster)
    assert api_cluster["default_provisioned_redis_version"] == "8.0"
    for node in cluster_api(cluster, ns, ClusterApi.nodes):
        assert node["supported_database_versions"] == [
            {"db_type": "redis", "version": "8.0"}, {"db_type": "redis", "version": "7.0"},
            {"db_type": "valkey", "version": "8.1"}]

    refused = apply_redb(cluster, ns, redb_manifest("eng62", redisVersion="6.2"))
    assert "spec.redisVersion" in refused and "it runs 8.0, 7.0, valkey-8.1" in refused, refused

    databases = {name: replicated_db(name, redisVersion=version) for name, (version, _, _) in ENGINES.items()}
    for name, db in databases.items():
        version, field, prefix = ENGINES[name]
        status = eventually(f"REDB {name}'s status.version", lambda db=db: rec_version(db), timeout=60)
        assert status == version
        role, running = _engine(db.address, db.port, db.password, field)
        assert role == "master" and running.startswith(prefix), (name, role, running)
        host, port = _replica_address(db)
        role, running = _engine(host, port, db.password, field)
        assert role == "slave" and running.startswith(prefix), (name, role, running)
        print(f"{name}: redisVersion {version}, master and replica run {field} {running}")

    # raising 7.0 to 8.0 is an in-place upgrade (test_redb_engine_upgrade.py); another engine is not
    changed = apply_redb(cluster, ns, redb_manifest("eng70", replication=True, redisVersion="valkey-8.1"))
    assert "spec.redisVersion" in changed and "Redis and Valkey are different engines" in changed, changed

    for name, db in databases.items():
        _, field, prefix = ENGINES[name]
        old = db.write_confirmed(50)
        started = time.monotonic()
        action = cluster_api(cluster, ns, _fail_over(int(db.uid)))
        print(f"{name}: planned failover {action.get('action_uid') or action}")
        writes = db.check_after_failover(old, started, timeout=60)  # asserts no confirmed write lost
        print(f"{name}: {len(db.confirmed)} WAIT-confirmed writes all read back; {writes.summary()}")
        role, running = _engine(db.address, db.port, db.password, field)
        assert role == "master" and running.startswith(prefix), (name, role, running)
        eventually(f"{name} whole again (master and an online replica)", db.whole, timeout=180)


def _fail_over(bdb_uid: int) -> Callable[[ClusterApi], Awaitable[dict[str, Any]]]:
    return lambda api: api.fail_over_bdb(bdb_uid)


def rec_version(db: Database) -> str | None:
    version = redb_status(db.cluster, db.ns, db.name).get("version")
    return str(version) if version else None
