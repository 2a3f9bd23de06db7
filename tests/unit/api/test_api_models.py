"""The models read real manifests: the contract's examples, camelCase, pass-through Kubernetes types."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.api import RedisEnterpriseCluster, RedisEnterpriseDatabase
from recluster.api.common import ImageSpec
from recluster.api.rec import RedisEnterpriseClusterSpec

pytestmark = pytest.mark.unit

# The HEAD example of the original operator, unchanged.
HEAD_EXAMPLE: dict[str, Any] = {
    "apiVersion": "app.redislabs.com/v1",
    "kind": "RedisEnterpriseCluster",
    "metadata": {"name": "rec", "namespace": "ns", "labels": {"app": "redis-enterprise"}},
    "spec": {
        "nodes": 3,
        "persistentSpec": {"enabled": True, "volumeSize": "20Gi"},
        "redisEnterpriseNodeResources": {
            "requests": {"cpu": 2, "memory": "4Gi"},
            "limits": {"cpu": 2, "memory": "4Gi"},
        },
    },
}


def test_head_example_parses() -> None:
    rec = RedisEnterpriseCluster.model_validate(HEAD_EXAMPLE)
    assert rec.name == "rec" and rec.namespace == "ns"
    assert rec.spec.persistence_enabled
    assert rec.spec.volume_size_bytes() == 20 * 1024**3
    assert rec.spec.node_memory_bytes() == 4 * 1024**3


def test_defaults() -> None:
    spec = RedisEnterpriseClusterSpec()
    assert spec.nodes == 3
    assert spec.username == "demo@redis.com"
    assert spec.ui_service_type == "ClusterIP"
    assert not spec.persistence_enabled
    assert spec.volume_size_bytes() == 5 * 4 * 1024**3  # 5x the default 4Gi


def test_manifest_round_trip_keeps_camel_case() -> None:
    spec = RedisEnterpriseClusterSpec.model_validate(
        {
            "nodes": 5,
            "enforceIPv4": True,
            "podTolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []},
            "uiAnnotations": {"a": "b"},
            "redisEnterpriseImageSpec": {"repository": "r", "versionTag": "1", "imagePullPolicy": "Always"},
        }
    )
    manifest = spec.manifest()
    assert manifest["enforceIPv4"] is True
    assert manifest["podTolerations"][0]["operator"] == "Exists"
    assert manifest["redisEnterpriseImageSpec"]["versionTag"] == "1"
    assert RedisEnterpriseClusterSpec.model_validate(manifest) == spec


def test_unknown_spec_fields_are_kept_not_refused() -> None:
    spec = RedisEnterpriseClusterSpec.model_validate(
        {"nodes": 3, "ldap": {"protocol": "LDAPS"}}
    )
    assert spec.model_extra == {"ldap": {"protocol": "LDAPS"}}


@pytest.mark.parametrize(
    ("spec", "default", "image"),
    [
        ({}, "recluster:0.1.0", "recluster:0.1.0"),
        ({"versionTag": "0.2.0"}, "recluster:0.1.0", "recluster:0.2.0"),
        ({"repository": "reg:5000/me/recluster"}, "recluster:0.1.0", "reg:5000/me/recluster:0.1.0"),
        ({"repository": "r", "digestHash": "sha256:ab"}, "recluster:0.1.0", "r@sha256:ab"),
        ({}, "reg:5000/recluster", "reg:5000/recluster:latest"),
    ],
)
def test_image_spec(spec: dict[str, str], default: str, image: str) -> None:
    assert ImageSpec.model_validate(spec).image(default) == image


def test_redb_defaults_and_status_aliases() -> None:
    redb = RedisEnterpriseDatabase.model_validate(
        {
            "metadata": {"name": "mydb", "namespace": "ns"},
            "spec": {},
            "status": {
                "databaseUID": "1",
                "internalEndpoints": [{"host": "h", "port": 12000}],
                "status": "active",
            },
        }
    )
    assert redb.spec.memory_size == "100MB"
    assert redb.spec.shard_count == 1
    assert redb.spec.eviction_policy == "volatile-lru"
    assert redb.spec.persistence == "disabled"
    assert redb.secret_name == "redb-mydb"
    assert redb.cluster_name is None
    assert redb.status is not None and redb.status.database_uid == "1"
    assert redb.status.manifest()["databaseUID"] == "1"
