"""Fixtures of the builder tests: a minimal and a full-featured REC, and the golden-file check.

Golden files live in tests/unit/golden/. After an intended change to a builder, regenerate them with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/specs

and review the diff (`git diff tests/unit/golden`) before committing it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from recluster.api import RedisEnterpriseCluster, check_rec
from recluster.operator.specs import TlsMaterial, build_rec_children

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
IMAGE = "recluster:0.1.0"
PASSWORD = "s3cret-Passw0rd"
BROKER_PASSWORD = "br0ker-Passw0rd"
LICENSE = "----- LICENSE KEY TEXT -----"
TLS = TlsMaterial(
    certificate_pem="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    private_key_pem="-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    ca_certificate_pem="-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
)

MINIMAL_REC: dict[str, Any] = {
    "apiVersion": "app.redislabs.com/v1",
    "kind": "RedisEnterpriseCluster",
    "metadata": {
        "name": "rec",
        "namespace": "ns",
        "uid": "11111111-2222-3333-4444-555555555555",
        "generation": 1,
    },
    "spec": {"nodes": 3},
}

FULL_REC: dict[str, Any] = {
    "apiVersion": "app.redislabs.com/v1",
    "kind": "RedisEnterpriseCluster",
    "metadata": {
        "name": "prod",
        "namespace": "data",
        "uid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "generation": 7,
    },
    "spec": {
        "nodes": 5,
        "persistentSpec": {"enabled": True, "storageClassName": "fast-ssd", "volumeSize": "40Gi"},
        "redisEnterpriseNodeResources": {
            "limits": {"cpu": "4", "memory": "8Gi"},
            "requests": {"cpu": "4", "memory": "8Gi"},
        },
        "redisEnterpriseImageSpec": {
            "repository": "registry.example/recluster",
            "versionTag": "0.1.1",
            "imagePullPolicy": "Always",
        },
        "redisEnterpriseServicesRiggerImageSpec": {
            "repository": "registry.example/recluster",
            "versionTag": "0.1.1",
        },
        "redisEnterpriseServicesRiggerResources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "1", "memory": "1Gi"},
        },
        "servicesRiggerSpec": {
            "databaseServiceType": "cluster_ip,headless,load_balancer",
            "serviceNaming": "redis-port",
            "extraEnvVars": [{"name": "RIGGER_LOG", "value": "debug"}],
            "podAnnotations": {"rigger": "yes"},
        },
        "pullSecrets": [{"name": "regcred"}],
        "uiServiceType": "LoadBalancer",
        "uiAnnotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        "username": "admin@example.com",
        "license": LICENSE,
        "extraLabels": {"team": "data", "example.com/cost-center": "42"},
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "nodeSelector": {"pool": "redis"},
        "podTolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "redis", "effect": "NoSchedule"}
        ],
        "rackAwarenessNodeLabel": "topology.kubernetes.io/zone",
        "antiAffinityAdditionalTopologyKeys": ["kubernetes.io/hostname"],
        "priorityClassName": "high",
        "enforceIPv4": True,
        "extraEnvVars": [{"name": "NODE_LOG", "value": "info"}],
        "redisEnterpriseTerminationGracePeriodSeconds": 7200,
        "serviceBrokerSpec": {
            "enabled": True,
            "persistentSpec": {"storageClassName": "standard", "volumeSize": "2Gi"},
            "imageSpec": {"repository": "registry.example/recluster", "versionTag": "0.1.1"},
        },
    },
}


@pytest.fixture
def minimal_rec() -> RedisEnterpriseCluster:
    return check_rec(MINIMAL_REC)


@pytest.fixture
def full_rec() -> RedisEnterpriseCluster:
    return check_rec(FULL_REC)


BuildAll = Callable[[RedisEnterpriseCluster], list[dict[str, Any]]]


@pytest.fixture
def build_all() -> BuildAll:
    """Every child of a REC, built as for a new cluster (with the test passwords and certificate)."""

    def build(rec: RedisEnterpriseCluster) -> list[dict[str, Any]]:
        return build_rec_children(
            rec,
            image=IMAGE,
            password_secret_exists=False,
            tls_secret_exists=False,
            password=PASSWORD,
            tls=TLS,
            broker_password=BROKER_PASSWORD,
            broker_tls=TLS,
        )

    return build


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objects, Dumper=_NoAliasDumper, sort_keys=False, width=120)


@pytest.fixture
def golden() -> Callable[[str, list[dict[str, Any]]], None]:
    """golden(name, objects): the objects equal tests/unit/golden/<name>.yaml (or rewrite it)."""

    def check(name: str, objects: list[dict[str, Any]]) -> None:
        path = GOLDEN_DIR / f"{name}.yaml"
        text = _dump(objects)
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/specs"
        expected = path.read_text(encoding="utf-8")
        if list(yaml.safe_load_all(expected)) != objects:
            diff = "\n".join(
                difflib.unified_diff(expected.splitlines(), text.splitlines(), "golden", "built", lineterm="")
            )
            pytest.fail(f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept):\n{diff}")

    return check
