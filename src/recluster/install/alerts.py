"""recluster's alerting rules, from one list (ALERTS): a Prometheus rule file and the same groups in a
PrometheusRule object. Pure: data in, text out. The tests check that every expression parses
(promtool) and names only metrics that recluster exports, and the e2e test loads these very rules
into a real Prometheus with `for` shortened (`rule_groups(for_=...)`). docs/monitoring.md says what
each alert means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

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

