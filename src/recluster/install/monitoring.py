"""The monitoring pack, from one source: the alerting rules (alerts.py: a Prometheus rule file, the
same groups in a PrometheusRule object) and the Grafana dashboard (dashboard.py). `recluster bundle`
writes them to deploy/monitoring/ and, for the Helm chart, to charts/recluster/files/.

The metrics are described in docs/monitoring.md."""

from __future__ import annotations

from recluster.install.alerts import prometheus_rule_text, rules_text
from recluster.install.dashboard import dashboard_text

RULES_FILE = "prometheus-rules.yaml"
PROMETHEUS_RULE_FILE = "prometheusrule.yaml"
DASHBOARD_FILE = "grafana-dashboard.json"


def generated_files() -> dict[str, str]:
    """What `recluster bundle` writes, by path relative to the repository."""
    rules, board = rules_text(), dashboard_text()
    return {
        f"deploy/monitoring/{RULES_FILE}": rules,
        f"deploy/monitoring/{PROMETHEUS_RULE_FILE}": prometheus_rule_text(),
        f"deploy/monitoring/{DASHBOARD_FILE}": board,
        f"charts/recluster/files/{RULES_FILE}": rules,
        f"charts/recluster/files/{DASHBOARD_FILE}": board,
    }
