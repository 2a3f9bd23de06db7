"""The monitoring pack (src/recluster/install/monitoring.py with alerts.py and dashboard.py;
deploy/monitoring/, charts/recluster/files/): current with its source, every alert complete, the
dashboard well formed, and every expression of both naming only metrics that recluster exports.
(promtool parses them: tests/integration/install.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from recluster.install import alerts, dashboard, monitoring
from recluster.node.metric_families import FAMILIES
from recluster.node.metric_families import exposed_names as node_names
from recluster.operator.metrics import exposed_names as operator_names

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label matchers, range
    selectors, grouping clauses, functions and keywords are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for found in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[found.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if found.group(0).lower() not in KEYWORDS:
            names.add(found.group(0))
    return names


def test_metric_names_of_an_expression() -> None:
    assert metric_names('sum by (cluster, bdb) (rate(a_total{x="y{z}"}[$__rate_interval])) / b > bool 0.9'
                        ' * on (cluster) group_left (name) max by (cluster, name) (c{cluster=~"$c"})') == {
        "a_total", "b", "c"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(d_bucket[5m]))) or vector(0)") == {
        "d_bucket"}


def test_generated_files_are_current() -> None:
    for path, text in monitoring.generated_files().items():
        assert (REPO / path).read_text() == text, f"{path} is stale: run `recluster bundle`"


def test_every_alert_is_complete() -> None:
    groups = yaml.safe_load((REPO / "deploy/monitoring" / monitoring.RULES_FILE).read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
    wanted = {"ReclusterNodeDown", "ReclusterDatabaseDown", "ReclusterShardWithoutReplica",
              "ReclusterQuorumLost", "ReclusterNodeCertificateExpiring",
              "ReclusterDatabaseCertificateExpiring", "ReclusterOperatorReconcileErrors"}
    assert wanted <= set(names)


def test_a_shorter_for_changes_the_for_only() -> None:
    short = alerts.rule_groups(for_="5s")["groups"][0]["rules"]
    full = alerts.rule_groups()["groups"][0]["rules"]
    assert [rule["for"] for rule in short] == ["5s"] * len(full)
    assert [{**rule, "for": None} for rule in short] == [{**rule, "for": None} for rule in full]


def test_rules_and_dashboard_query_only_exported_metrics() -> None:
    exported = node_names() | operator_names()
    exprs = [alert.expr for alert in alerts.ALERTS]
    board = json.loads((REPO / "deploy/monitoring/grafana-dashboard.json").read_text())
    exprs += dashboard.dashboard_exprs(board)
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{sorted(names - exported)} in {expr}"
        used |= names
    # the dashboard shows ops/s, latency, memory and connections of the databases
    for name in ("recluster_bdb_commands_total", "recluster_bdb_commands_duration_seconds_total",
                 "bdb_used_memory", "bdb_conns", "node_available_memory"):
        assert name in used


def test_dashboard_is_well_formed() -> None:
    board = json.loads((REPO / "deploy/monitoring/grafana-dashboard.json").read_text())
    assert board["uid"] == "recluster" and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert variables == {"datasource", "cluster", "bdb"}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat") and panel["datasource"]["uid"] == "${datasource}"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            for variable in re.findall(r"\$(\w+)", target["expr"]):
                assert variable in variables | {"__rate_interval"}, (panel["title"], variable)
    # panels do not overlap
    cells = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))


def test_docs_describe_every_metric_and_alert() -> None:
    doc = (REPO / "docs" / "monitoring.md").read_text()
    for family in FAMILIES:
        assert f"`{family.name}`" in doc, family.name
    for name in operator_names():
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert f"`{base}" in doc, name
    for alert in alerts.ALERTS:
        assert f"`{alert.name}`" in doc, alert.name
