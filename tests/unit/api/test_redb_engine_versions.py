"""REDB `redisVersion`: written as a version, one the REC's cluster runs (its
status.bundledDatabaseVersions), fixed once the database exists (named errors); the bdb body carries
it; the REC's status lists the cluster's engines from GET /v1/cluster."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.api.engine_versions import bundled_names, bundled_versions
from recluster.api.rec import ClusterState
from recluster.api.redb import RedisEnterpriseDatabase
from recluster.api.validation import validate_redb
from recluster.operator.rec.status import Observed, valid_status
from recluster.operator.redb.cluster import rec_versions
from recluster.operator.redb.mapping import bdb_create_body, bdb_update_body
from recluster.operator.redb.reconcile import old_body

pytestmark = pytest.mark.unit

CLUSTER = {"software_version": "0.1.0", "default_provisioned_redis_version": "8.0",
           "supported_database_versions": [{"db_type": "redis", "version": "8.0"},
                                           {"db_type": "redis", "version": "7.0"},
                                           {"db_type": "valkey", "version": "8.1"}]}
BUNDLED = bundled_versions(CLUSTER)
VERSIONS = bundled_names(BUNDLED)


def redb(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseDatabase",
                            "metadata": {"name": "db", "namespace": "ns"}, "spec": spec}
    if status is not None:
        body["status"] = status
    return body


def errors_of(new: dict[str, Any], old: dict[str, Any] | None = None,
              versions: list[str] | None = VERSIONS) -> list[tuple[str, str, str]]:
    errors = validate_redb(new, old, cluster_exists=True, versions=versions)
    return [(e.field, e.rule, e.message) for e in errors if e.field == "spec.redisVersion"]


def test_bundled_versions_from_the_cluster() -> None:
    assert BUNDLED == [{"dbType": "redis", "version": "8.0", "isDefault": True},
                       {"dbType": "redis", "version": "7.0", "isDefault": False},
                       {"dbType": "valkey", "version": "8.1", "isDefault": False}]
    assert VERSIONS == ["8.0", "7.0", "valkey-8.1"]
    assert bundled_versions({"software_version": "0.1.0"}) == []  # a node from before engines


def test_rec_status_lists_them_and_the_redb_side_reads_them_back() -> None:
    rec = {"metadata": {"name": "rec", "generation": 1}, "status": {}}
    status = valid_status(rec, Observed(ClusterState.RUNNING, "ok", 3, 3, bundled_versions=BUNDLED))
    assert status["bundledDatabaseVersions"] == BUNDLED
    assert rec_versions({"status": status}) == VERSIONS
    assert rec_versions({"status": {}}) is None  # not read yet: the cluster checks it at creation


@pytest.mark.parametrize("version", ["8.0", "7.0", "valkey-8.1", "redis-7.0", "Valkey-8.1", None])
def test_a_version_the_cluster_runs_is_valid(version: str | None) -> None:
    assert errors_of(redb(redisVersion=version) if version else redb()) == []


def test_an_unknown_version_names_the_field_and_the_versions() -> None:
    ((field, rule, message),) = errors_of(redb(redisVersion="7.4"))
    assert (field, rule) == ("spec.redisVersion", "version")
    assert "'7.4' is not a version the cluster runs; it runs 8.0, 7.0, valkey-8.1" in message
    ((field, rule, message),) = errors_of(redb(redisVersion="latest"))
    assert rule == "version" and "major.minor" in message


def test_versions_not_known_yet_are_not_checked_here() -> None:
    assert errors_of(redb(redisVersion="7.4"), versions=None) == []


def test_the_version_is_fixed_once_the_database_runs() -> None:
    running = redb({"version": "7.0"}, redisVersion="7.0")
    ((field, rule, message),) = errors_of(redb(redisVersion="8.0"), running)
    assert (field, rule) == ("spec.redisVersion", "immutable")
    assert "the database runs 7.0" in message and "not supported yet" in message
    # the same version in another spelling, or the field removed, is no change
    assert errors_of(redb(redisVersion="redis-7.0"), running) == []
    assert errors_of(redb(), running) == []
    # a database created without redisVersion runs the default: naming another one is a change
    ((_, rule, _),) = errors_of(redb(redisVersion="valkey-8.1"), redb({"version": "8.0"}))
    assert rule == "immutable"
    assert errors_of(redb(redisVersion="8.0"), redb({"version": "8.0"})) == []


def test_a_value_an_older_operator_ignored_is_left_alone() -> None:
    assert errors_of(redb(redisVersion="6.2"), redb({"version": "7.0"}, redisVersion="6.2")) == []


def test_not_created_yet_the_version_may_change() -> None:
    assert errors_of(redb(redisVersion="7.0"), redb(redisVersion="8.0")) == []


def test_the_reconcile_loop_checks_against_the_running_version() -> None:
    bdb = {"uid": 1, "port": 12000, "version": "7.0", "redis_version": "7.0"}
    old = old_body(redb(redisVersion="7.0"), bdb)
    assert old is not None and old["status"] == {"version": "7.0"}
    ((_, rule, _),) = errors_of(redb(redisVersion="8.0"), old)
    assert rule == "immutable"


def test_the_bdb_body_carries_the_version_and_an_update_never_changes_it() -> None:
    model = RedisEnterpriseDatabase.model_validate(redb(redisVersion="valkey-8.1"))
    assert bdb_create_body(model, "pw")["redis_version"] == "valkey-8.1"
    assert "redis_version" not in bdb_create_body(RedisEnterpriseDatabase.model_validate(redb()), "pw")
    bdb = {"memory_size": 100 << 20, "replication": False, "shards_count": 1,
           "eviction_policy": "volatile-lru", "data_persistence": "disabled",
           "redis_version": "8.0", "version": "8.0"}
    assert bdb_update_body(model, bdb) == {}
