"""Deployment `<rec>-services-rigger`: makes the per-database Services and tags master pods."""

from __future__ import annotations

import copy
from typing import Any

from recluster.api.rec import DEFAULT_RIGGER_RESOURCES, RedisEnterpriseCluster
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import (
    RIGGER_CONTAINER,
    RIGGER_ROLE,
    api_url,
    object_labels,
    rigger_name,
    selector_labels,
    service_account_name,
)
from recluster.operator.specs.pod import (
    CA_FILE,
    CREDENTIALS_DIR,
    DEFAULT_PULL_POLICY,
    ca_mount,
    ca_volume,
    container_security_context,
    credentials_mount,
    credentials_volume,
    field_env,
    image_fields,
    log_format_env,
    pod_security_context,
    scheduling,
)


def rigger_environment(
    rec: RedisEnterpriseCluster, cluster_domain: str, log_format: str = "plain"
) -> list[dict[str, Any]]:
    rigger_spec = rec.spec.services_rigger_spec
    env = [
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        {"name": "RECLUSTER_RIGGER_CLUSTER", "value": rec.name},
        {"name": "RECLUSTER_RIGGER_LEASE_NAME", "value": rigger_name(rec)},
        {"name": "RECLUSTER_RIGGER_API_URL", "value": api_url(rec, cluster_domain)},
        {"name": "RECLUSTER_RIGGER_CREDENTIALS_FILE", "value": CREDENTIALS_DIR},
        # The cluster's CA: the rigger verifies the REST API's certificate against it, nothing else.
        {"name": "RECLUSTER_RIGGER_CA_FILE", "value": CA_FILE},
        {
            "name": "RECLUSTER_RIGGER_DATABASE_SERVICE_TYPE",
            "value": rigger_spec.database_service_type if rigger_spec else "cluster_ip,headless",
        },
        {
            "name": "RECLUSTER_RIGGER_SERVICE_NAMING",
            "value": rigger_spec.service_naming if rigger_spec else "bdb_name",
        },
    ]
    if rigger_spec and rigger_spec.database_service_port_policy:
        env.append(
            {
                "name": "RECLUSTER_RIGGER_SERVICE_PORT_POLICY",
                "value": rigger_spec.database_service_port_policy,
            }
        )
    extra = (rigger_spec.extra_env_vars if rigger_spec else None) or []
    env += log_format_env(log_format, extra)
    env += copy.deepcopy(extra)
    return env


# A rigger on a node that died is replaced after this many seconds instead of Kubernetes' default
# 300: the database Services follow a failover only while a rigger runs.
RIGGER_EVICTION_SECONDS = 10
_NODE_GONE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")


def rigger_scheduling(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """The REC's scheduling fields plus a short eviction after node loss (unless the user's
    podTolerations already say how long to stay)."""
    fields = scheduling(rec)
    tolerations = list(fields.get("tolerations") or [])
    keys = {t.get("key") for t in tolerations}
    tolerations += [
        {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": RIGGER_EVICTION_SECONDS,
        }
        for key in _NODE_GONE_TAINTS
        if key not in keys
    ]
    return {**fields, "tolerations": tolerations}


RIGGER_REPLICAS = 2


def rigger_anti_affinity(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """Spread the replicas over nodes when there are nodes to spread over (preferred: a one-node
    cluster still runs both)."""
    return {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": selector_labels(rec, RIGGER_ROLE)},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }


def build_rigger_deployment(
    rec: RedisEnterpriseCluster,
    *,
    image: str,
    cluster_domain: str = "cluster.local",
    pull_policy: str = DEFAULT_PULL_POLICY,
    log_format: str = "plain",
) -> dict[str, Any]:
    """Two replicas on different nodes (preferred), one leading through a Lease: a database's
    Service follows a failover only while a rigger acts, so the loss of one node must not take the
    only rigger along. Rolling updates start the new replica first, so a standby is always there."""
    spec = rec.spec
    resources = spec.redis_enterprise_services_rigger_resources
    rigger_spec = spec.services_rigger_spec
    template_metadata: dict[str, Any] = {"labels": object_labels(rec, RIGGER_ROLE)}
    if rigger_spec and rigger_spec.pod_annotations:
        template_metadata["annotations"] = dict(rigger_spec.pod_annotations)
    container = {
        "name": RIGGER_CONTAINER,
        **image_fields(spec.redis_enterprise_services_rigger_image_spec, image, pull_policy),
        "command": ["recluster", "rigger"],
        "env": rigger_environment(rec, cluster_domain, log_format),
        "resources": resources.manifest()
        if resources is not None
        else copy.deepcopy(DEFAULT_RIGGER_RESOURCES),
        "securityContext": container_security_context(),
        "volumeMounts": [credentials_mount(), ca_mount()],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(rec, rigger_name(rec), role=RIGGER_ROLE),
        "spec": {
            "replicas": RIGGER_REPLICAS,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": selector_labels(rec, RIGGER_ROLE)},
            "template": {
                "metadata": template_metadata,
                "spec": {
                    "serviceAccountName": service_account_name(rec),
                    "automountServiceAccountToken": True,
                    "securityContext": pod_security_context(),
                    **rigger_scheduling(rec),
                    "affinity": {"podAntiAffinity": rigger_anti_affinity(rec)},
                    "containers": [container],
                    "volumes": [credentials_volume(rec), ca_volume(rec)],
                },
            },
        },
    }
