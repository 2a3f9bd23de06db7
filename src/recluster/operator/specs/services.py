"""Services of a REC: `<rec>` (headless: governs the StatefulSet, REST API and Sentinel), `<rec>-ui`
(the console) and `<rec>-prom` (headless, metrics). Database Services belong to the rigger."""

from __future__ import annotations

from typing import Any

from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import (
    SERVICE_LABEL,
    node_selector_labels,
    nodes_service_name,
    prom_service_name,
    ui_service_name,
)
from recluster.operator.specs.ports import API_PORT, METRICS_PORT, SENTINEL_PORT, SENTINEL_TLS_PORT, UI_PORT


def _port(name: str, port: int, target: str) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": target, "protocol": "TCP"}


def build_nodes_service(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """Headless, and publishing pods that are not ready: a node's name (`<pod>.<rec>.<ns>.svc`) must
    resolve while it bootstraps, joins or recovers after a full restart, when no pod is ready yet.
    Sentinel clients ask every address and keep the ones that answer."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(rec, nodes_service_name(rec)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": node_selector_labels(rec),
            # the TLS databases' sentinel has no named container port (adding one would restart
            # every node pod of an existing cluster for nothing): its number
            "ports": [_port("api", API_PORT, "api"), _port("sentinel", SENTINEL_PORT, "sentinel"),
                      {"name": "sentinel-tls", "port": SENTINEL_TLS_PORT, "targetPort": SENTINEL_TLS_PORT,
                       "protocol": "TCP"}],
        },
    }


def build_ui_service(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(rec, ui_service_name(rec), annotations=rec.spec.ui_annotations),
        "spec": {
            "type": str(rec.spec.ui_service_type),
            "selector": node_selector_labels(rec),
            "ports": [_port("ui", UI_PORT, "ui")],
        },
    }


def build_prom_service(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """Headless so that a ServiceMonitor scrapes every node, not one behind a virtual IP."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(rec, prom_service_name(rec), labels={SERVICE_LABEL: "prom-metrics"}),
        "spec": {
            "clusterIP": "None",
            "selector": node_selector_labels(rec),
            "ports": [_port("prometheus", METRICS_PORT, "metrics")],
        },
    }
