"""REDB spec -> bdb body, the partial update, the secret and the status: pure, no I/O."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api import check_redb, parse_memory_size
from recluster.api.naming import service_names_patch
from recluster.api.redb import EvictionPolicy, Persistence, RedisEnterpriseDatabase, persistence_fields
from recluster.node.request_models import BdbCreate, BdbUpdate
from recluster.operator.redb.mapping import (
    bdb_create_body,
    bdb_update_body,
    changed_fields,
    resolve_roles_permissions,
)
from recluster.operator.redb.secret import (
    CREATED_BY_ANNOTATION,
    build_new_secret,
    created_by_operator,
    port_patch,
    secret_value,
)
from recluster.operator.redb.status import DatabaseView, database_status, invalid_status, status_changes

pytestmark = pytest.mark.unit

PASSWORD = "s3cret-Pa55word"


def body(name: str = "mydb", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": 3},
        "spec": spec,
    }


def model(**spec: Any) -> RedisEnterpriseDatabase:
    # as accepted before (old == new): `defaultUser: false` is refused on new objects but still
    # mapped for the databases made before it was
    return check_redb(body(**spec), body(**spec), cluster_exists=True)


def test_defaults_map_to_the_cluster_defaults() -> None:
    assert bdb_create_body(model(), PASSWORD) == {
        "name": "mydb",
        "type": "redis",
        "memory_size": 100 * 1024 * 1024,
        "replication": False,
        "shards_count": 1,
        "eviction_policy": "volatile-lru",
        "data_persistence": "disabled",
        "authentication_redis_pass": PASSWORD,
        "tls_mode": "disabled",
        "enforce_client_authentication": "enabled",
        "authentication_ssl_client_certs": [],
    }


def test_tls_maps_to_the_bdb_and_client_certificates_follow_the_spec() -> None:
    secure = model(tlsMode="enabled", clientAuthenticationCertificates=["app-ca"])
    created = bdb_create_body(secure, PASSWORD, ["PEM-A"])
    assert created["tls_mode"] == "enabled"
    assert created["authentication_ssl_client_certs"] == [{"client_cert": "PEM-A"}]
    bdb = {**created, "uid": 1}
    assert bdb_update_body(secure, bdb, None, ["PEM-A"]) == {}
    assert bdb_update_body(secure, bdb, None, ["PEM-B"]) == {
        "authentication_ssl_client_certs": [{"client_cert": "PEM-B"}]}
    relaxed = model(tlsMode="enabled", clientAuthenticationCertificates=["app-ca"],
                    enforceClientAuthentication=False)
    assert bdb_update_body(relaxed, bdb, None, ["PEM-A"]) == {"enforce_client_authentication": "disabled"}


def test_every_field_of_the_reference() -> None:
    redb = model(
        memorySize="1GB",
        replication=True,
        persistence="aofAlways",
        evictionPolicy="allkeys-lru",
        databasePort=12000,
    )
    created = bdb_create_body(redb, PASSWORD)
    assert created["memory_size"] == 1024**3
    assert created["replication"] is True
    assert (created["data_persistence"], created["aof_policy"]) == ("aof", "appendfsync-always")
    assert created["eviction_policy"] == "allkeys-lru"
    assert created["port"] == 12000


@pytest.mark.parametrize(
    ("persistence", "expected"),
    [
        ("disabled", {"data_persistence": "disabled"}),
        ("aofEverySecond", {"data_persistence": "aof", "aof_policy": "appendfsync-every-sec"}),
        ("aofAlways", {"data_persistence": "aof", "aof_policy": "appendfsync-always"}),
        (
            "snapshotEvery1Hour",
            {"data_persistence": "snapshot", "snapshot_policy": [{"secs": 3600, "writes": 1}]},
        ),
        (
            "snapshotEvery6Hour",
            {"data_persistence": "snapshot", "snapshot_policy": [{"secs": 21600, "writes": 1}]},
        ),
        (
            "snapshotEvery12Hour",
            {"data_persistence": "snapshot", "snapshot_policy": [{"secs": 43200, "writes": 1}]},
        ),
    ],
)
def test_persistence(persistence: str, expected: dict[str, Any]) -> None:
    assert persistence_fields(Persistence(persistence)) == expected


def test_no_password_without_default_user_or_with_an_empty_one() -> None:
    assert "authentication_redis_pass" not in bdb_create_body(model(defaultUser=False), PASSWORD)
    assert "authentication_redis_pass" not in bdb_create_body(model(), "")
    assert "authentication_redis_pass" not in bdb_create_body(model(), None)


specs = st.fixed_dictionaries(
    {},
    optional={
        "memorySize": st.sampled_from(["100MB", "256MB", "1GB", "512Mi", "0.5GB"]),
        "replication": st.booleans(),
        "persistence": st.sampled_from([p.value for p in Persistence]),
        "evictionPolicy": st.sampled_from([e.value for e in EvictionPolicy]),
        "databasePort": st.integers(10000, 19999),
        "defaultUser": st.booleans(),
    },
)


@given(specs)
def test_every_valid_spec_makes_a_body_the_cluster_accepts(spec: dict[str, Any]) -> None:
    created = bdb_create_body(model(**spec), PASSWORD)
    BdbCreate.model_validate(created)  # the node daemon's strict request model
    assert created["memory_size"] == parse_memory_size(spec.get("memorySize", "100MB"))


@given(specs, specs)
def test_update_brings_any_bdb_in_line_and_is_idempotent(old: dict[str, Any], new: dict[str, Any]) -> None:
    new.pop("databasePort", None)
    old.pop("databasePort", None)
    bdb = {**bdb_create_body(model(**old), PASSWORD), "uid": 1, "port": 10001, "status": "active"}
    desired = model(**new)
    changes = bdb_update_body(desired, bdb, PASSWORD if desired.spec.default_user else None)
    BdbUpdate.model_validate(changes)
    after = {**bdb, **changes}
    if after.get("data_persistence") != "aof":
        after.pop("aof_policy", None)
    if after.get("data_persistence") != "snapshot":
        after.pop("snapshot_policy", None)
    assert bdb_update_body(desired, after, PASSWORD if desired.spec.default_user else None) == {}


def test_update_sends_only_what_differs() -> None:
    bdb = {**bdb_create_body(model(), PASSWORD), "uid": 1, "port": 10001}
    assert bdb_update_body(model(), bdb, PASSWORD) == {}
    changes = bdb_update_body(model(memorySize="200MB"), bdb, PASSWORD)
    assert changes == {"memory_size": 200 * 1024 * 1024}
    assert changed_fields(bdb_update_body(model(), bdb, "other")) == ["authentication_redis_pass"]


def test_new_secret_is_marked_and_owned() -> None:
    secret = build_new_secret(model(), PASSWORD)
    assert secret["metadata"]["name"] == "redb-mydb"
    assert secret_value(secret, "password") == PASSWORD
    assert created_by_operator(secret)
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert not created_by_operator({"metadata": {"annotations": {CREATED_BY_ANNOTATION: "someone"}}})
    assert build_new_secret(model(databaseSecretName="mine"), PASSWORD)["metadata"]["name"] == "mine"


def test_port_patch_only_when_missing_or_different() -> None:
    secret = build_new_secret(model(), PASSWORD)
    patch = port_patch(secret, 12000)
    assert patch is not None
    assert base64.b64decode(patch["data"]["port"]).decode() == "12000"
    secret["data"].update(patch["data"])
    assert port_patch(secret, 12000) is None
    assert port_patch(secret, None) is None


def test_service_names_patch() -> None:
    patch = service_names_patch(["mydb", "mydb-headless"])
    assert base64.b64decode(patch["data"]["service_names"]).decode() == "mydb,mydb-headless"


def test_status_from_the_cluster() -> None:
    bdb = {
        "uid": 7,
        "port": 12000,
        "status": "active",
        "action_uid": "a-1",
        "version": "7.0",
        "created_time": "2026-01-01T00:00:00Z",
        "authentication_redis_pass": PASSWORD,
    }
    shards = [{"status": "active"}, {"status": "active"}]
    view = DatabaseView(bdb, shards, "completed", "mydb.ns.svc.cluster.local", "rec")
    status = database_status(body(), view, "2026-01-01T00:00:01Z")
    assert status["databaseUID"] == "7"
    assert status["status"] == "active"
    assert status["specStatus"] == "Valid"
    assert status["internalEndpoints"] == [{"host": "mydb.ns.svc.cluster.local", "port": 12000}]
    assert status["shardStatuses"] == {"active": 2}
    assert status["lastActionStatus"] == "completed"
    assert status["observedGeneration"] == 3
    assert status["redisEnterpriseCluster"] == "rec"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert PASSWORD not in repr(status)


def test_invalid_status_and_events() -> None:
    status = invalid_status(body(), "spec.memorySize: 1MB is below the minimum of 100MB", "now")
    assert status["specStatus"] == "Invalid"
    assert status_changes({"status": "pending"}, {"status": "active"}) == [
        ("StatusChange", "database status pending -> active")
    ]
    assert status_changes({"status": "active"}, {"status": "active"}) == []


def test_an_engine_upgrade_shows_in_the_conditions_and_its_end_in_an_event() -> None:
    bdb = {"uid": 7, "port": 12000, "status": "active-change-pending", "version": "7.0",
           "redis_version": "8.0", "upgrade_from": "7.0"}
    status = database_status(body(), DatabaseView(bdb, [], "running", None, "rec"), "now")
    assert status["version"] == "7.0" and status["status"] == "active-change-pending"
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "True"
    assert progressing["message"].startswith("upgrading the engine from 7.0 to 8.0: replicas first")
    assert status_changes({"status": "active-change-pending", "version": "7.0"},
                          {"status": "active", "version": "8.0"}) == [
        ("StatusChange", "database status active-change-pending -> active"),
        ("EngineUpgraded", "every shard runs 8.0 (was 7.0)"),
    ]


ROLES = [{"uid": 4, "name": "app-readers", "management": "none"},
         {"uid": 5, "name": "ops", "management": "admin"}]
ACLS = [{"uid": 1, "name": "Full Access", "acl": "+@all ~*"},
        {"uid": 2, "name": "Read Only", "acl": "+@read ~*"}]


def test_roles_permissions_are_resolved_by_name_and_sent_as_the_cluster_uids() -> None:
    redb = model(rolesPermissions=[{"type": "redis-enterprise", "role": "app-readers", "acl": "Read Only"},
                                   {"type": "redis-enterprise", "role": "ops", "acl": "Full Access"}])
    resolved, unknown = resolve_roles_permissions(redb, ROLES, ACLS)
    assert unknown == []
    assert resolved == [{"role_uid": 4, "redis_acl_uid": 2}, {"role_uid": 5, "redis_acl_uid": 1}]
    assert bdb_create_body(redb, PASSWORD, None, resolved)["roles_permissions"] == resolved
    BdbCreate.model_validate(bdb_create_body(redb, PASSWORD, None, resolved))  # the API accepts it
    bdb = {"roles_permissions": [{"role_uid": 4, "redis_acl_uid": 2}]}
    assert bdb_update_body(redb, bdb, roles_permissions=resolved)["roles_permissions"] == resolved
    assert "roles_permissions" not in bdb_update_body(redb, {"roles_permissions": resolved},
                                                      roles_permissions=resolved)


def test_an_unknown_role_or_acl_is_named_with_its_place_in_the_list() -> None:
    redb = model(rolesPermissions=[{"type": "redis-enterprise", "role": "app-readers", "acl": "Read Only"},
                                   {"type": "redis-enterprise", "role": "nobody", "acl": "No Such ACL"}])
    resolved, unknown = resolve_roles_permissions(redb, ROLES, ACLS)
    assert resolved == [{"role_uid": 4, "redis_acl_uid": 2}]
    assert unknown == ["rolesPermissions[1].role: the cluster has no role named 'nobody'",
                       "rolesPermissions[1].acl: the cluster has no Redis ACL named 'No Such ACL'"]


def test_roles_permissions_of_another_type_are_refused_by_the_validator() -> None:
    with pytest.raises(Exception, match="redis-enterprise"):
        check_redb(body(rolesPermissions=[{"type": "ldap", "role": "r", "acl": "a"}]), None,
                   cluster_exists=True)
