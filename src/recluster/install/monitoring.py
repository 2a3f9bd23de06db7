"""The monitoring pack, from one source: the alerting rules (a Prometheus rule file, the same groups in
a PrometheusRule object) and the Grafana dashboard. Pure: data in, text out. `recluster bundle` writes
them to deploy/monitoring/ and, for the Helm chart, to charts/recluster/files/; the tests check that
every expression parses (promtool) and names only metrics that recluster exports, and the e2e test
loads these very rules into a real Prometheus with `for` shortened (`rule_groups(for_=...)`).

The metrics are described in docs/monitoring.md."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

RULES_FILE = "prometheus-rules.yaml"
PROMETHEUS_RULE_FILE = "prometheusrule.yaml"
DASHBOARD_FILE = "grafana-dashboard.json"
RULE_GROUP = "recluster"
DAY = 86400


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str  # critical: act now; warning: act today
    summary: str
    description: str


# The node pods' metrics are the cluster's own view (every node reports it from its copy of the cluster
# state), so an alert fires even when the node it is about cannot be scraped. `max by`/`min by` fold
# the copies of the same series reported by several nodes.
ALERTS: tuple[Alert, ...] = (
    Alert(
        "ReclusterNodeDown",
        "min by (cluster, node, name) (recluster_cluster_node_reachable) == 0",
        "1m", "critical",
        "recluster node {{ $labels.name }} is down",
        "The cluster {{ $labels.cluster }} has not reached its node {{ $labels.node }} ({{ $labels.name }}) "
        "for a minute. Its masters failed over to their replicas; its replicas are re-created on the other "
        "nodes after the REC's slaveHAGracePeriod. Check the node pod and its Kubernetes node.",
    ),
    Alert(
        "ReclusterNodeNotServing",
        "node_up == 0",
        "5m", "warning",
        "a recluster node runs but cannot read the cluster state",
        "The node daemon at {{ $labels.instance }} (node {{ $labels.node }}, cluster {{ $labels.cluster }}) "
        "answers its metrics endpoint but has not read the cluster state for 5 minutes: it has not joined "
        "a cluster, or its configuration store is down. Read its log (kubectl logs) and its readiness "
        "(GET /v1/ready).",
    ),
    Alert(
        "ReclusterQuorumLost",
        'count by (cluster) (node_up{cluster!=""} == 1)'
        " < on (cluster) max by (cluster) (max_over_time(recluster_cluster_quorum[15m]))"
        " or (max by (cluster) (max_over_time(recluster_cluster_quorum[15m]))"
        ' unless on (cluster) count by (cluster) (node_up{cluster!=""} == 1))',
        "1m", "critical",
        "recluster cluster {{ $labels.cluster }} lost its quorum",
        "Fewer nodes of the cluster {{ $labels.cluster }} answer than a majority needs (the value is how "
        "many answer, none when it is the quorum itself). Without a majority the cluster makes no change: "
        "no failover, no new database, no configuration change. Bring the nodes back; a cluster that "
        "lost its majority for good is recovered with the REC's clusterRecovery.",
    ),
    Alert(
        "ReclusterDatabaseDown",
        "max by (cluster, bdb, name) (recluster_cluster_bdb_info)"
        " unless on (cluster, bdb) (max by (cluster, bdb) (bdb_up) == 1)",
        "1m", "critical",
        "recluster database {{ $labels.name }} is down",
        "No master shard of database {{ $labels.bdb }} ({{ $labels.name }}) of the cluster "
        "{{ $labels.cluster }} has answered for a minute: clients cannot write to it. A failover "
        "normally takes seconds; without a replica the master's node must come back.",
    ),
    Alert(
        "ReclusterShardWithoutReplica",
        'max by (cluster, bdb, node, shard) (redis_server_connected_slaves{role="master"}) == 0 and on'
        ' (cluster, bdb) (max by (cluster, bdb) (recluster_cluster_bdb_info{replication="true"}) == 1)',
        "5m", "warning",
        "database {{ $labels.bdb }} has no replica connected to its master",
        "The master shard {{ $labels.shard }} of the replicated database {{ $labels.bdb }} (cluster "
        "{{ $labels.cluster }}, node {{ $labels.node }}) has had no replica connected for 5 minutes: a "
        "failure of its node now loses the database. The cluster re-creates a lost replica after the "
        "REC's slaveHAGracePeriod when a node has room for it.",
    ),
    Alert(
        "ReclusterShardDown",
        "max by (cluster, bdb, node, role, shard) (redis_server_up) == 0",
        "2m", "warning",
        "shard {{ $labels.shard }} of database {{ $labels.bdb }} does not answer",
        "The {{ $labels.role }} shard {{ $labels.shard }} of database {{ $labels.bdb }} on node "
        "{{ $labels.node }} (cluster {{ $labels.cluster }}) has not answered INFO for 2 minutes although "
        "its node runs. The node restarts a stopped shard; read the node's log for the shard's lines.",
    ),
    Alert(
        "ReclusterDatabaseMemoryHigh",
        "max by (cluster, bdb) (bdb_used_memory) / max by (cluster, bdb) (bdb_memory_limit > 0) > 0.9",
        "10m", "warning",
        "database {{ $labels.bdb }} uses over 90 % of its memory limit",
        "Database {{ $labels.bdb }} of the cluster {{ $labels.cluster }} has used more than 90 % of its "
        "memory limit for 10 minutes; at the limit it evicts keys or refuses writes, as its eviction "
        "policy says. Raise the REDB's memorySize or reduce the data.",
    ),
    Alert(
        "ReclusterNodeCertificateExpiring",
        f"min by (cluster, node) (node_cert_expiration_seconds) < {30 * DAY}",
        "1h", "warning",
        "the certificate of recluster node {{ $labels.node }} expires within 30 days",
        "The certificate of the REST API, console and metrics endpoint of node {{ $labels.node }} (cluster "
        "{{ $labels.cluster }}) expires in {{ $value | humanizeDuration }}. It comes from the REC's Secret "
        "<rec>-tls: replace it there.",
    ),
    Alert(
        "ReclusterClusterCertificateExpiring",
        f"min by (cluster, name) (recluster_cluster_cert_expiration_seconds) < {30 * DAY}",
        "1h", "warning",
        "the {{ $labels.name }} certificate of recluster cluster {{ $labels.cluster }} expires within "
        "30 days",
        "The certificate the cluster {{ $labels.cluster }} keeps as {{ $labels.name }} expires in "
        "{{ $value | humanizeDuration }}. `proxy`, `api`, `cm` and `metrics_exporter` are certificates a "
        "user gave (the REC's certificates.*CertificateSecretName Secrets): renew them there (cert-manager "
        "renews before this); `database_ca` is the cluster's own CA: rotate it "
        "(POST /v1/cluster/certificates/rotate, docs/certificates.md).",
    ),
    Alert(
        "ReclusterDatabaseCertificateExpiring",
        f"min by (cluster, bdb, node, shard) (recluster_shard_cert_expiration_seconds) < {21 * DAY}",
        "1h", "warning",
        "the TLS certificate of database {{ $labels.bdb }} was not renewed",
        "The certificate shard {{ $labels.shard }} of database {{ $labels.bdb }} serves (node "
        "{{ $labels.node }}, cluster {{ $labels.cluster }}) expires in {{ $value | humanizeDuration }}; the "
        "node renews it 30 days before, so renewal is failing. Read the node's log.",
    ),
    Alert(
        "ReclusterCertificateExpiryImminent",
        f"min by (cluster, node) (node_cert_expiration_seconds) < {7 * DAY}"
        f" or min by (cluster, bdb, node, shard) (recluster_shard_cert_expiration_seconds) < {7 * DAY}"
        f" or min by (cluster, name) (recluster_cluster_cert_expiration_seconds) < {7 * DAY}",
        "10m", "critical",
        "a recluster certificate expires within 7 days",
        "A certificate of the cluster {{ $labels.cluster }} ({{ if $labels.name }}{{ $labels.name }}"
        "{{ else }}node {{ $labels.node }}{{ end }}"
        "{{ if $labels.bdb }}, database {{ $labels.bdb }}{{ end }}) expires in "
        "{{ $value | humanizeDuration }}: clients and nodes will refuse it then.",
    ),
    Alert(
        "ReclusterOperatorReconcileErrors",
        "sum without (instance, pod) (rate(recluster_operator_reconcile_errors_total[5m])) > 0",
        "15m", "warning",
        "the recluster operator keeps failing to reconcile {{ $labels.kind }} objects",
        "Reconciles of {{ $labels.kind }} objects have failed without a break for 15 minutes. The REC's "
        "and REDB's events and status say which object and why; the operator's log has the details.",
    ),
    Alert(
        "ReclusterOperatorNoLeader",
        "max without (instance, pod) (recluster_operator_leader) == 0",
        "5m", "critical",
        "no recluster operator replica leads",
        "The operator replicas that Prometheus scrapes have none holding the Lease for 5 minutes: "
        "nothing reconciles the RECs and REDBs, and no replica serves the admission webhook. Read the "
        "operator's log.",
    ),
    Alert(
        "ReclusterBackupFailing",
        "max by (cluster, bdb) (recluster_cluster_bdb_backup_failures) > 0",
        "30m", "warning",
        "scheduled backups of database {{ $labels.bdb }} keep failing",
        "The scheduled backups of database {{ $labels.bdb }} of the cluster {{ $labels.cluster }} have "
        "failed for 30 minutes ({{ $value }} in a row; the cluster retries with doubling delays). The "
        "REDB's status.backupInfo and its BackupFailed events, or the bdb's backup_failure_reason, say why: "
        "wrong credentials, a missing bucket, an unreachable store.",
    ),
)


def rule_groups(for_: str | None = None) -> dict[str, Any]:
    """The rule file's content (`groups:`); `for_` replaces every alert's `for` (the tests use a short
    one)."""
    return {
        "groups": [
            {
                "name": RULE_GROUP,
                "rules": [
                    {
                        "alert": alert.name,
                        "expr": alert.expr,
                        "for": for_ or alert.for_,
                        "labels": {"severity": alert.severity},
                        "annotations": {"summary": alert.summary, "description": alert.description},
                    }
                    for alert in ALERTS
                ],
            }
        ]
    }


RULES_HEADER = """\
# Generated by `recluster bundle` from src/recluster/install/monitoring.py; do not edit.
# recluster's alerts as a Prometheus rule file (rule_files:); docs/monitoring.md says what each means.
# Check: promtool check rules prometheus-rules.yaml
"""

PROMETHEUS_RULE_HEADER = """\
# Generated by `recluster bundle` from src/recluster/install/monitoring.py; do not edit.
# The alerts of prometheus-rules.yaml as a PrometheusRule for the Prometheus Operator (its CRDs must be
# installed). Add the label your Prometheus's ruleSelector wants, then:
#   kubectl apply -n <namespace> -f deploy/monitoring/prometheusrule.yaml
"""


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=4096, allow_unicode=True)


def rules_text(for_: str | None = None) -> str:
    return RULES_HEADER + _dump(rule_groups(for_))


def prometheus_rule_text() -> str:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "recluster", "labels": {"app": "redis-enterprise"}},
        "spec": rule_groups(),
    }
    return PROMETHEUS_RULE_HEADER + _dump(rule)


# ---- the Grafana dashboard -------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
CLUSTER = 'cluster=~"$cluster"'
BDB = f'{CLUSTER}, bdb=~"$bdb"'
RATE = "$__rate_interval"
LABEL_VALUES = re.compile(r"label_values\((.+), *\w+\)")
# a database's name beside its uid, for legends: `<expr by (cluster, bdb)> * on (cluster, bdb) ...`
NAMED = " * on (cluster, bdb) group_left (name) max by (cluster, bdb, name) (recluster_cluster_bdb_info)"


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    kind: str = "timeseries"  # timeseries or stat
    unit: str = "short"
    width: int = 8
    description: str = ""


def _rate(metric: str, selector: str = BDB) -> str:
    return f"sum by (cluster, bdb) (rate({metric}{{{selector}}}[{RATE}]))"


def _db(metric: str) -> str:
    """A per-database gauge of the master's node, named."""
    return f"max by (cluster, bdb) ({metric}{{{BDB}}}){NAMED}"


def _rows() -> list[tuple[str, list[Panel]]]:
    hits, misses = _rate("recluster_bdb_read_hits_total"), _rate("recluster_bdb_read_misses_total")
    return [
        ("Cluster", [
            Panel("Nodes answering / in the cluster",
                  ((f"count by (cluster) (node_up{{{CLUSTER}}} == 1)", "{{cluster}} answering"),
                   (f"max by (cluster) (recluster_cluster_nodes{{{CLUSTER}}})", "{{cluster}} nodes"),
                   (f"max by (cluster) (recluster_cluster_quorum{{{CLUSTER}}})", "{{cluster}} quorum")),
                  kind="stat"),
            Panel("Databases up / defined",
                  ((f"count by (cluster) (max by (cluster, bdb) (bdb_up{{{CLUSTER}}}) == 1)",
                    "{{cluster}} up"),
                   (f"count by (cluster) (max by (cluster, bdb) (recluster_cluster_bdb_info{{{CLUSTER}}}))",
                    "{{cluster}} defined")),
                  kind="stat"),
            Panel("Operations per second",
                  ((f"sum by (cluster) (rate(recluster_bdb_commands_total{{{CLUSTER}}}[{RATE}]))",
                    "{{cluster}}"),),
                  kind="stat", unit="ops"),
        ]),
        ("Nodes", [
            Panel("Node reachable (the cluster's view)",
                  ((f"min by (cluster, node, name) (recluster_cluster_node_reachable{{{CLUSTER}}})",
                    "{{name}}"),),
                  description="1: the cluster's leader reached the node at its last look; 0: down"),
            Panel("Available memory",
                  ((f"node_available_memory{{{CLUSTER}}}", "node {{node}}"),), unit="bytes"),
            Panel("Free storage (data volume)",
                  ((f"node_persistent_storage_free{{{CLUSTER}}}", "node {{node}}"),), unit="bytes"),
            Panel("Load (1 min)", ((f"recluster_node_load1{{{CLUSTER}}}", "node {{node}}"),)),
            Panel("Shards per node",
                  ((f"count by (cluster, node, role) (redis_server_up{{{CLUSTER}}})",
                    "node {{node}} {{role}}"),)),
            Panel("Certificate expiry",
                  ((f"node_cert_expiration_seconds{{{CLUSTER}}}", "node {{node}}"),), unit="s"),
        ]),
        ("Databases", [
            Panel("Operations per second",
                  ((_rate("recluster_bdb_commands_total") + NAMED, "{{name}}"),), unit="ops"),
            Panel("Mean latency (in the shard)",
                  ((f"{_rate('recluster_bdb_commands_duration_seconds_total')}"
                    f" / {_rate('recluster_bdb_commands_total')}{NAMED}", "{{name}}"),),
                  unit="s",
                  description="Time the master shard spent running commands, per command (INFO "
                              "commandstats): without the network and queueing a client also sees"),
            Panel("Memory used / limit",
                  ((_db("bdb_used_memory"), "{{name}} used"), (_db("bdb_memory_limit"), "{{name}} limit")),
                  unit="bytes"),
            Panel("Client connections", ((_db("bdb_conns"), "{{name}}"),)),
            Panel("Keys", ((_db("bdb_no_of_keys"), "{{name}}"),)),
            Panel("Network",
                  ((_rate("recluster_bdb_ingress_bytes_total") + NAMED, "{{name}} in"),
                   (_rate("recluster_bdb_egress_bytes_total") + NAMED, "{{name}} out")),
                  unit="Bps"),
            Panel("Read hit ratio", ((f"{hits} / ({hits} + {misses}){NAMED}", "{{name}}"),),
                  unit="percentunit"),
            Panel("Evictions and expirations per second",
                  ((_rate("recluster_bdb_evicted_objects_total") + NAMED, "{{name}} evicted"),
                   (_rate("recluster_bdb_expired_objects_total") + NAMED, "{{name}} expired")),
                  unit="ops"),
            Panel("Replicas connected to the master",
                  ((f'max by (cluster, bdb) (redis_server_connected_slaves{{{BDB}, role="master"}}){NAMED}',
                    "{{name}}"),)),
        ]),
        ("Operator", [
            Panel("Reconciles per second",
                  ((f"sum by (kind) (rate(recluster_operator_reconciles_total[{RATE}]))", "{{kind}}"),
                   (f"sum by (kind) (rate(recluster_operator_reconcile_errors_total[{RATE}]))",
                    "{{kind}} failed")),
                  unit="ops"),
            Panel("Reconcile duration (p95)",
                  (("histogram_quantile(0.95, sum by (kind, le) "
                    f"(rate(recluster_operator_reconcile_duration_seconds_bucket[{RATE}])))", "{{kind}}"),),
                  unit="s"),
            Panel("Leading replicas", (("sum(recluster_operator_leader)", "leaders"),), kind="stat"),
        ]),
    ]


def _panel(panel: Panel, uid: int, x: int, y: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": uid,
        "type": panel.kind,
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.exprs)
        ],
    }
    if panel.description:
        out["description"] = panel.description
    if panel.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"}
    return out


def _variable(name: str, label: str, query: str, multi: bool) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": multi,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard: the cluster, its nodes, its databases and the operator."""
    panels: list[dict[str, Any]] = []
    y = 0
    uid = 1
    for title, row in _rows():
        panels.append({"id": uid, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        uid += 1
        y += 1
        x = 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(_panel(panel, uid, x, y))
            uid += 1
            x += panel.width
        y += 8
    return {
        "uid": "recluster",
        "title": "recluster",
        "description": "recluster clusters: nodes, databases and the operator (docs/monitoring.md)",
        "tags": ["recluster", "redis"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            _variable("cluster", "Cluster", "label_values(recluster_cluster_nodes, cluster)", multi=True),
            _variable("bdb", "Database", 'label_values(recluster_cluster_bdb_info{cluster=~"$cluster"}, bdb)',
                      multi=True),
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: its panels' targets and its query variables."""
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", ())]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":  # Grafana's label_values(<series selector>, <label>)
            found = LABEL_VALUES.fullmatch(variable["definition"])
            assert found, variable["definition"]
            exprs.append(found.group(1))
    return exprs


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
