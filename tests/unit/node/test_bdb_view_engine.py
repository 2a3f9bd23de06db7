"""The bdb view reports the engine the database's shards run (its `redis_version`, as the node's
engine table spells it), not a hard-coded one, and that the default user is on."""

from __future__ import annotations

import pytest

from recluster.node.engines import Engine, EngineTable
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState
from recluster.node.views import bdb_view, cluster_view, without_secrets

pytestmark = pytest.mark.unit

ENGINES = EngineTable.of([Engine("redis", 8, 0, 2, "/usr/bin/redis-server"),
                          Engine("redis", 7, 0, 15, "/opt/engines/redis-7.0/bin/redis-server"),
                          Engine("valkey", 8, 1, 1, "/usr/bin/valkey-server")])


def _state(bdb: BdbRecord) -> ClusterState:
    return ClusterState(
        cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"), bdbs={1: bdb}
    )


def _bdb(**extra: str) -> BdbRecord:
    return BdbRecord(
        uid=1, name="db", memory_size=100 << 20, port=12000, replication=False,
        data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
        eviction_policy="volatile-lru", **extra,
    )


@pytest.mark.parametrize("version", ["8.0", "7.0", "valkey-8.1"])
def test_bdb_view_reports_the_engine_of_the_database(version: str) -> None:
    bdb = _bdb(redis_version=version)
    view = bdb_view(_state(bdb), bdb, ENGINES)
    assert view["version"] == version and view["redis_version"] == version and view["default_user"] is True


def test_a_record_from_before_engines_were_chosen_runs_redis_7_0() -> None:
    bdb = BdbRecord.model_validate_json(_bdb().model_dump_json(exclude={"redis_version"}))
    assert bdb.redis_version == "7.0"
    assert bdb_view(_state(bdb), bdb, ENGINES)["version"] == "7.0"


def test_cluster_view_says_the_default_and_the_supported_versions() -> None:
    view = cluster_view(_state(_bdb()), None, ENGINES)
    assert view["default_provisioned_redis_version"] == "8.0"
    assert view["supported_database_versions"] == [
        {"db_type": "redis", "version": "8.0"}, {"db_type": "redis", "version": "7.0"},
        {"db_type": "valkey", "version": "8.1"}]


def test_the_backup_location_is_never_shown_and_its_digest_only_to_who_sees_passwords() -> None:
    bdb = _bdb().model_copy(update={
        "backup": True, "backup_interval": 3600, "backup_location_digest": "d" * 64,
        "backup_location": {"type": "s3", "bucket_name": "b", "access_key_id": "AKID",
                            "secret_access_key": "sealed:xyz"}})
    view = bdb_view(_state(bdb), bdb, ENGINES)
    assert "backup_location" not in view and "sealed:xyz" not in str(view)
    assert view["backup_location_digest"] == "d" * 64 and view["next_backup_time"] is not None
    assert "backup_location_digest" not in without_secrets(view)
