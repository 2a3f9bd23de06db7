"""RECLUSTER_LOG_FORMAT, every part's log format switch, reaches the pods the operator creates when the
operator's own environment sets it (OPERATOR_LOG_FORMAT and --log-format are the operator's alone),
and a REC's extraEnvVars still win without a duplicate entry."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.api import check_rec
from recluster.operator.specs import build_rec_children
from recluster.operator.startup import Settings

pytestmark = pytest.mark.unit


def containers(log_format: str, **spec: Any) -> dict[str, list[dict[str, Any]]]:
    rec = check_rec({"apiVersion": "app.redislabs.com/v1", "kind": "RedisEnterpriseCluster",
                     "metadata": {"name": "rec", "namespace": "ns", "uid": "u", "generation": 1},
                     "spec": {"nodes": 3, "serviceBrokerSpec": {"enabled": True}, **spec}})
    children = build_rec_children(rec, image="img", password_secret_exists=True, tls_secret_exists=True,
                                  log_format=log_format)
    return {obj["metadata"]["name"]: obj["spec"]["template"]["spec"]["containers"][0]["env"]
            for obj in children if obj["kind"] in ("StatefulSet", "Deployment")}


def named(env: list[dict[str, Any]], name: str = "RECLUSTER_LOG_FORMAT") -> list[Any]:
    return [entry.get("value") for entry in env if entry["name"] == name]


def test_json_reaches_the_node_rigger_and_broker_pods() -> None:
    pods = containers("json")
    assert set(pods) == {"rec", "rec-services-rigger", "rec-service-broker"}
    assert all(named(env) == ["json"] for env in pods.values())


def test_plain_adds_nothing() -> None:
    assert all(named(env) == [] for env in containers("plain").values())


def test_the_recs_own_setting_wins_once() -> None:
    mine = [{"name": "RECLUSTER_LOG_FORMAT", "value": "plain"}]
    pods = containers("json", extraEnvVars=mine, servicesRiggerSpec={"extraEnvVars": mine})
    assert named(pods["rec"]) == ["plain"] and named(pods["rec-services-rigger"]) == ["plain"]
    assert named(pods["rec-service-broker"]) == ["json"]


def test_which_environment_sets_what() -> None:
    base = {"POD_NAMESPACE": "ns"}
    assert Settings.from_environment(base).pods_log_format == "plain"
    operator_only = Settings.from_environment({**base, "OPERATOR_LOG_FORMAT": "json"})
    assert operator_only.json_logs and operator_only.pods_log_format == "plain"
    everyone = Settings.from_environment({**base, "RECLUSTER_LOG_FORMAT": "json"})
    assert everyone.json_logs and everyone.pods_log_format == "json"
