"""The alerting rules and the dashboard's queries through promtool (Debian's `prometheus` package,
scripts/debian-packages.txt): the rule file as shipped and as the e2e test loads it (short `for`)
pass `promtool check rules`, and every dashboard expression parses (each checked as a recording rule,
Grafana's variables filled in)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from recluster.install import alerts, dashboard, monitoring

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: bin/setup installs it (Debian's prometheus package)"
    return found


def check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_shipped_rule_file_passes_promtool() -> None:
    result = check_rules(REPO / "deploy" / "monitoring" / monitoring.RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts.ALERTS)} rules found" in result.stdout


def test_the_rules_with_a_short_for_pass_promtool(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(alerts.rules_text(for_="10s"))
    result = check_rules(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_fails_promtool(tmp_path: Path) -> None:
    """The check above would catch a bad expression: promtool does parse them."""
    path = tmp_path / "rules.yaml"
    groups = alerts.rule_groups()
    groups["groups"][0]["rules"][0]["expr"] = "min by (node (recluster_cluster_node_reachable)"
    path.write_text(yaml.safe_dump(groups))
    assert check_rules(path).returncode != 0


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    board = json.loads((REPO / "deploy" / "monitoring" / monitoring.DASHBOARD_FILE).read_text())
    filled = {"$__rate_interval": "5m", "${datasource}": "", "$cluster": ".*", "$bdb": ".*"}
    rules = []
    for index, expr in enumerate(dashboard.dashboard_exprs(board)):
        for variable, value in filled.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = check_rules(path)
    assert result.returncode == 0, result.stdout + result.stderr
