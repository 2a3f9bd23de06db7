"""recluster's Grafana dashboard: the cluster, its nodes, its databases and the operator, one row
each. Pure: data in, JSON out. The tests check that every expression parses (promtool) and names only
metrics that recluster exports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

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

