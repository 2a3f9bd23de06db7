"""REDB `redisVersion`: written as a version, one the REC's cluster runs (its
status.bundledDatabaseVersions), raised in place only within its engine on a replicated database
(named errors); the bdb body carries
it; the REC's status lists the cluster's engines from GET /v1/cluster."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.api.engine_versions import bundled_names, bundled_versions, default_name
from recluster.api.rec import ClusterState
from recluster.api.redb import RedisEnterpriseDatabase
from recluster.api.validation import validate_redb
from recluster.operator.rec.status import Observed, valid_status
from recluster.operator.redb.cluster import rec_default_version, rec_versions
from recluster.operator.redb.mapping import bdb_create_body, bdb_update_body, not_following
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
    errors = validate_redb(new, old, cluster_exists=True, versions=versions, default="8.0")
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
    ((field, rule, message),) = errors_of(redb(redisVersion="newest"))
    assert rule == "version" and "major.minor" in message and "or latest" in message


def test_versions_not_known_yet_are_not_checked_here() -> None:
    assert errors_of(redb(redisVersion="7.4"), versions=None) == []


def test_raising_the_version_of_a_replicated_database_is_an_upgrade() -> None:
    running = redb({"version": "7.0"}, redisVersion="7.0", replication=True)
    assert errors_of(redb(redisVersion="8.0", replication=True), running) == []
    # the same version in another spelling, or the field removed, is no change
    assert errors_of(redb(redisVersion="redis-7.0"), running) == []
    assert errors_of(redb(), running) == []
    assert errors_of(redb(redisVersion="8.0"), redb({"version": "8.0"})) == []


@pytest.mark.parametrize(("old", "new", "replication", "words"), [
    ("8.0", "7.0", True, ["the database runs 8.0; a downgrade to 7.0 is refused",
                          "cannot read what the newer one writes"]),
    ("7.0", "valkey-8.1", True, ["changing it to valkey-8.1 is refused", "not versions of one"]),
    ("valkey-8.1", "8.0", True, ["changing it to 8.0 is refused", "Redis and Valkey"]),
    ("7.0", "8.0", False, ["upgrading from 7.0 to 8.0 needs a replica", "Turn replication on"]),
])
def test_a_change_the_cluster_cannot_make_in_place_is_refused_saying_why(
        old: str, new: str, replication: bool, words: list[str]) -> None:
    running = redb({"version": old}, redisVersion=old, replication=replication)
    ((field, rule, message),) = errors_of(redb(redisVersion=new, replication=replication), running)
    assert (field, rule) == ("spec.redisVersion", "engine-change")
    for word in words:
        assert word in message
    # a database created without redisVersion runs the default: naming another engine is a change
    ((_, rule, _),) = errors_of(redb(redisVersion="valkey-8.1", replication=True),
                                redb({"version": "8.0"}, replication=True))
    assert rule == "engine-change"


def test_turning_replication_on_in_the_same_change_is_not_enough() -> None:
    running = redb({"version": "7.0"}, redisVersion="7.0")
    ((_, rule, message),) = errors_of(redb(redisVersion="8.0", replication=True), running)
    assert rule == "engine-change" and "needs a replica" in message


def test_a_change_while_an_upgrade_runs_is_refused() -> None:
    upgrading = redb({"version": "7.0"}, redisVersion="8.0", replication=True)
    ((_, rule, message),) = errors_of(redb(redisVersion="7.0", replication=True), upgrading)
    assert rule == "upgrade-running"
    assert "being upgraded from 7.0 to 8.0" in message and "status.version is 8.0" in message


def test_a_value_an_older_operator_ignored_is_left_alone() -> None:
    assert errors_of(redb(redisVersion="6.2"), redb({"version": "7.0"}, redisVersion="6.2")) == []


def test_not_created_yet_the_version_may_change() -> None:
    assert errors_of(redb(redisVersion="7.0"), redb(redisVersion="8.0")) == []


def test_the_reconcile_loop_checks_against_the_running_version() -> None:
    bdb = {"uid": 1, "port": 12000, "version": "8.0", "redis_version": "8.0"}
    old = old_body(redb(redisVersion="8.0", replication=True), bdb)
    assert old is not None and old["status"] == {"version": "8.0"}
    ((_, rule, _),) = errors_of(redb(redisVersion="7.0", replication=True), old)
    assert rule == "engine-change"


def test_the_bdb_body_carries_the_version_and_an_update_never_changes_it() -> None:
    model = RedisEnterpriseDatabase.model_validate(redb(redisVersion="valkey-8.1"))
    assert bdb_create_body(model, "pw")["redis_version"] == "valkey-8.1"
    assert "redis_version" not in bdb_create_body(RedisEnterpriseDatabase.model_validate(redb()), "pw")
    bdb = {"memory_size": 100 << 20, "replication": False, "shards_count": 1,
           "eviction_policy": "volatile-lru", "data_persistence": "disabled",
           "redis_version": "8.0", "version": "8.0"}
    assert bdb_update_body(model, bdb) == {}


def test_a_raised_version_is_sent_and_one_the_cluster_would_refuse_is_not() -> None:
    bdb = {"memory_size": 100 << 20, "replication": True, "shards_count": 1,
           "eviction_policy": "volatile-lru", "data_persistence": "disabled",
           "redis_version": "7.0", "version": "7.0"}

    def body(version: str) -> dict[str, Any]:
        return bdb_update_body(RedisEnterpriseDatabase.model_validate(
            redb(redisVersion=version, replication=True)), bdb)

    assert body("8.0") == {"redis_version": "8.0"}
    assert body("redis-7.0") == {}
    # an older operator's REDB whose field it ignored keeps the engine it runs
    assert body("valkey-8.1") == {} and body("6.2") == {}
    # while the upgrade runs the bdb names the target: nothing more to send
    assert body("8.0") == {"redis_version": "8.0"}
    assert bdb_update_body(RedisEnterpriseDatabase.model_validate(redb(redisVersion="8.0", replication=True)),
                           {**bdb, "redis_version": "8.0"}) == {}


def test_latest_follows_the_clusters_default_and_says_when_it_cannot() -> None:
    default = default_name(BUNDLED)
    assert default == "8.0" and default_name([]) is None
    assert rec_default_version({"status": {"bundledDatabaseVersions": BUNDLED}}) == "8.0"
    assert rec_default_version({"status": {}}) is None
    # a new database: latest (or major) is accepted and the cluster gives it its default
    for value in ("latest", "major", "Latest"):
        assert errors_of(redb(redisVersion=value)) == []
        model = RedisEnterpriseDatabase.model_validate(redb(redisVersion=value))
        assert "redis_version" not in bdb_create_body(model, "pw")
    assert errors_of(redb(redisVersion="newest"))[0][1] == "version"
    bdb = {"memory_size": 100 << 20, "replication": True, "shards_count": 1,
           "eviction_policy": "volatile-lru", "data_persistence": "disabled",
           "redis_version": "7.0", "version": "7.0"}

    def update(spec: dict[str, Any], running: dict[str, Any], default: str | None) -> dict[str, Any]:
        return bdb_update_body(RedisEnterpriseDatabase.model_validate(redb(**spec)), running, None, None,
                               None, default)

    follow = {"redisVersion": "latest", "replication": True}
    # the default moved past what the database runs: it is upgraded in place
    assert update(follow, bdb, "8.0") == {"redis_version": "8.0"}
    assert update(follow, {**bdb, "redis_version": "8.0", "version": "8.0"}, "8.0") == {}
    assert update(follow, bdb, None) == {}  # the default not known yet: nothing moves
    # a database that cannot follow (no replica) stays, and says why
    alone = {**bdb, "replication": False}
    model = RedisEnterpriseDatabase.model_validate(redb(redisVersion="latest"))
    assert update({"redisVersion": "latest"}, alone, "8.0") == {}
    reason = not_following(model, alone, "8.0")
    assert reason.startswith("redisVersion latest is 8.0 in this cluster; the database stays on 7.0: ")
    assert "needs a replica" in reason
    assert not_following(model, {**alone, "redis_version": "8.0"}, "8.0") == ""
    # admission: moving a running database to latest is the upgrade to the default, with its rules
    old = old_body(redb(redisVersion="7.0"), {**bdb, "port": 12000})
    ((_, rule, message),) = [e for e in errors_of(redb(redisVersion="latest"), old)]
    assert rule == "engine-change" and message.startswith("latest is 8.0 in this cluster: ")
    errors = validate_redb(redb(redisVersion="latest", replication=True),
                           old_body(redb(redisVersion="7.0", replication=True), {**bdb, "port": 12000}),
                           cluster_exists=True, versions=VERSIONS, default="8.0")
    assert [e for e in errors if e.field == "spec.redisVersion"] == []
    # a Valkey database cannot follow the newest Redis
    valkey = {**bdb, "redis_version": "valkey-8.1", "version": "valkey-8.1", "port": 12000}
    ((_, rule, _),) = errors_of(redb(redisVersion="latest", replication=True),
                                old_body(redb(redisVersion="valkey-8.1", replication=True), valkey))
    assert rule == "engine-change"
