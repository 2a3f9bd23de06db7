"""The operator's default image and pull policy (its settings: the chart's `image`, through
OPERATOR_DEFAULT_IMAGE and OPERATOR_DEFAULT_IMAGE_PULL_POLICY) reach every pod it builds: the nodes,
the services rigger and the service broker. What a REC's own image specs say still wins."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.specs.conftest import MINIMAL_REC

from recluster.api import check_rec
from recluster.operator.specs import build_rec_children
from recluster.operator.startup import DEFAULT_IMAGE, Settings

pytestmark = pytest.mark.unit

CHART_ENV = {
    "POD_NAMESPACE": "ops",
    "OPERATOR_DEFAULT_IMAGE": "registry.example/mirror/recluster:9.9.9",
    "OPERATOR_DEFAULT_IMAGE_PULL_POLICY": "Always",
}


def pod_images(rec_body: dict[str, Any], settings: Settings) -> dict[str, tuple[str, str]]:
    """(image, pull policy) of each pod-building child's container, by the child's kind and name."""
    objects = build_rec_children(check_rec(rec_body), image=settings.image,
                                 pull_policy=settings.image_pull_policy,
                                 password_secret_exists=True, tls_secret_exists=True)
    found = {}
    for obj in objects:
        if obj["kind"] in ("StatefulSet", "Deployment"):
            (container, *_) = obj["spec"]["template"]["spec"]["containers"]
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            found[name] = (container["image"], container["imagePullPolicy"])
    return found


def with_broker(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    body = copy.deepcopy(MINIMAL_REC)
    body["spec"]["serviceBrokerSpec"] = {"enabled": True}
    body["spec"].update(spec or {})
    return body


def test_every_pod_gets_the_operators_default_image_and_pull_policy() -> None:
    settings = Settings.from_environment(CHART_ENV)
    assert settings.image == "registry.example/mirror/recluster:9.9.9"
    assert settings.image_pull_policy == "Always"
    assert pod_images(with_broker(), settings) == {
        "StatefulSet/rec": ("registry.example/mirror/recluster:9.9.9", "Always"),
        "Deployment/rec-services-rigger": ("registry.example/mirror/recluster:9.9.9", "Always"),
        "Deployment/rec-service-broker": ("registry.example/mirror/recluster:9.9.9", "Always"),
    }


def test_without_the_settings_the_project_image() -> None:
    settings = Settings.from_environment({"POD_NAMESPACE": "ops"})
    assert set(pod_images(with_broker(), settings).values()) == {(DEFAULT_IMAGE, "IfNotPresent")}


def test_the_recs_own_image_specs_win_field_by_field() -> None:
    settings = Settings.from_environment(CHART_ENV)
    body = with_broker({
        "redisEnterpriseImageSpec": {"repository": "other.example/node", "versionTag": "1.0",
                                     "imagePullPolicy": "IfNotPresent"},
        "redisEnterpriseServicesRiggerImageSpec": {"versionTag": "2.0"},  # the default's repository
    })
    assert pod_images(body, settings) == {
        "StatefulSet/rec": ("other.example/node:1.0", "IfNotPresent"),
        "Deployment/rec-services-rigger": ("registry.example/mirror/recluster:2.0", "Always"),
        "Deployment/rec-service-broker": ("registry.example/mirror/recluster:9.9.9", "Always"),
    }


def test_a_bad_pull_policy_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="OPERATOR_DEFAULT_IMAGE_PULL_POLICY='Sometimes': must be one of"):
        Settings.from_environment({**CHART_ENV, "OPERATOR_DEFAULT_IMAGE_PULL_POLICY": "Sometimes"})
