"""The monitoring pack on a real Prometheus (conftest.py): every target up, the rules loaded and
evaluated without error, the metrics the dashboard and the rules read present, and a stopped node
firing ReclusterNodeDown once its `for` has passed (then the node back and the REC Running again, so
the tests after these find the local cluster whole)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from tests.e2e.local.support import node_ready
from tests.e2e.monitoring.conftest import FOR, Monitored

from recluster.install.alerts import ALERTS, RULE_GROUP
from recluster.local.harness import NODE_SELECTOR, eventually, get, ready_pods, rec_status

pytestmark = pytest.mark.e2e

FOR_S = int(FOR.removesuffix("s"))


def test_every_target_is_up(monitored: Monitored) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = monitored.prometheus.api("targets")["activeTargets"]
        return targets if len(targets) == 4 and all(t["health"] == "up" for t in targets) else None

    try:
        targets = eventually("every target up", all_up, timeout=60)
    except AssertionError:
        raise AssertionError(f"targets: {monitored.prometheus.api('targets')['activeTargets']}") from None
    jobs = sorted(t["labels"]["job"] for t in targets)
    assert jobs == ["recluster-nodes"] * 3 + ["recluster-operator"]


def test_the_rules_load_and_evaluate_without_error(monitored: Monitored) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = monitored.prometheus.api("rules")["groups"]
        rules = [rule for group in groups if group["name"] == RULE_GROUP for rule in group["rules"]]
        return rules if rules and all(rule["health"] == "ok" for rule in rules) else None

    rules = eventually("every rule evaluated", evaluated, timeout=60)
    assert sorted(rule["name"] for rule in rules) == sorted(alert.name for alert in ALERTS)
    assert all(rule["duration"] == FOR_S and not rule.get("lastError") for rule in rules)


def test_what_the_rules_and_the_dashboard_read_is_there(monitored: Monitored) -> None:
    prometheus = monitored.prometheus

    def value(expr: str) -> float | None:
        result = prometheus.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    eventually("the cluster's view", lambda: value("max(recluster_cluster_nodes)") == 3, timeout=60)
    assert value("max(recluster_cluster_quorum)") == 2
    assert value("count(node_up == 1)") == 3
    assert value("sum(min by (node) (recluster_cluster_node_reachable))") == 3
    assert value('count(max by (bdb) (recluster_cluster_bdb_info{name="watched", replication="true"}))') == 1
    assert value("count(max by (bdb) (bdb_up) == 1)") == 1
    assert value('max(redis_server_connected_slaves{role="master"})') == 1
    assert value("count(redis_server_up == 1)") == 2  # the master and its replica
    assert value("max(recluster_operator_leader)") == 1
    assert value("count(recluster_bdb_commands_total)") == 1
    # the cluster is whole: none of its alerts fires (the operator's reconcile errors of the REC's
    # creation may still be in their 5 minute window)
    whole = {"ReclusterNodeDown", "ReclusterNodeNotServing", "ReclusterQuorumLost", "ReclusterDatabaseDown",
             "ReclusterShardDown", "ReclusterShardWithoutReplica"}
    firing = [a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
    assert not whole & set(firing), firing


def test_a_stopped_node_fires_node_down(monitored: Monitored) -> None:
    cluster, namespace, prometheus = monitored.cluster, monitored.namespace, monitored.prometheus
    pod = sorted(monitored.node_targets)[-1]
    host = get(cluster, namespace, "pod", pod)["spec"]["nodeName"]

    def node_down() -> list[dict[str, Any]]:
        alerts = prometheus.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "ReclusterNodeDown"
                and a["labels"]["name"].startswith(f"{pod}.")]

    stopped = time.monotonic()
    cluster.stop_node(host)
    try:
        pending = eventually("ReclusterNodeDown pending", node_down, timeout=60, interval=0.5)
        seen_pending = time.monotonic()
        firing = eventually("ReclusterNodeDown firing",
                            lambda: [a for a in node_down() if a["state"] == "firing"], timeout=FOR_S + 30)
        fired = time.monotonic()
        alert = firing[0]
        assert alert["labels"]["severity"] == "critical" and alert["value"] in ("0", "0e+00")
        assert pod in alert["annotations"]["summary"]
        # fired once its `for` had passed since it was pending, not before
        assert fired - seen_pending >= FOR_S - 2 * 2, (pending, fired - seen_pending)
        print(f"ReclusterNodeDown: pending {seen_pending - stopped:.1f}s and firing {fired - stopped:.1f}s "
              f"after node {host} stopped ({FOR} for)")
    finally:
        with contextlib.suppress(Exception):
            cluster.start_node(host)
    # the node and the REC whole again for the tests after these
    eventually(f"node {host} Ready", lambda: node_ready(cluster, host), timeout=180)
    eventually("three node pods ready", lambda: len(ready_pods(cluster, namespace, NODE_SELECTOR)) == 3,
               timeout=300)
    eventually("REC Running", lambda: rec_status(cluster, namespace).get("state") == "Running", timeout=300)
    eventually("ReclusterNodeDown resolved", lambda: not node_down(), timeout=120)
