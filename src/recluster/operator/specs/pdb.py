"""PodDisruptionBudget `<rec>`: voluntary evictions (node drains) take one node pod at a time, so a
drain never costs the cluster its majority."""

from __future__ import annotations

from typing import Any

from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import node_selector_labels, pod_disruption_budget_name


def build_pod_disruption_budget(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(rec, pod_disruption_budget_name(rec)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": node_selector_labels(rec)}},
    }
