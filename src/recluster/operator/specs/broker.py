"""The optional Open Service Broker (`serviceBrokerSpec.enabled`): Deployment, Service and PVC
`<rec>-service-broker` (the contract's suggested name). The PVC keeps the broker's instance and
binding records; it belongs to the REC like the rest (unlike node volumes, it holds no data)."""

from __future__ import annotations

import copy
from typing import Any

from recluster.api.quantity import format_bytes, quantity_bytes
from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import (
    BROKER_CONTAINER,
    BROKER_ROLE,
    api_url,
    broker_name,
    object_labels,
    selector_labels,
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
from recluster.operator.specs.ports import BROKER_PORT

DEFAULT_BROKER_VOLUME_SIZE = "1Gi"
BROKER_DATA_DIR = "/var/lib/recluster-broker"
DEFAULT_BROKER_RESOURCES: dict[str, dict[str, str]] = {
    "limits": {"cpu": "250m", "memory": "256Mi"},
    "requests": {"cpu": "250m", "memory": "256Mi"},
}


def build_broker_pvc(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    broker_spec = rec.spec.service_broker_spec
    persistent = broker_spec.persistent_spec if broker_spec else None
    size = (
        persistent.volume_size
        if persistent and persistent.volume_size is not None
        else DEFAULT_BROKER_VOLUME_SIZE
    )
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": format_bytes(quantity_bytes(size))}},
    }
    if persistent and persistent.storage_class_name:
        spec["storageClassName"] = persistent.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(rec, broker_name(rec), role=BROKER_ROLE),
        "spec": spec,
    }


def build_broker_deployment(
    rec: RedisEnterpriseCluster,
    *,
    image: str,
    cluster_domain: str = "cluster.local",
    pull_policy: str = DEFAULT_PULL_POLICY,
    log_format: str = "plain",
) -> dict[str, Any]:
    """One replica, Recreate: its volume is ReadWriteOnce."""
    broker_spec = rec.spec.service_broker_spec
    resources = broker_spec.resources if broker_spec else None
    container = {
        "name": BROKER_CONTAINER,
        **image_fields(broker_spec.image_spec if broker_spec else None, image, pull_policy),
        "command": ["recluster", "broker"],
        "env": [
            field_env("POD_NAMESPACE", "metadata.namespace"),
            {"name": "RECLUSTER_BROKER_CLUSTER", "value": rec.name},
            {"name": "RECLUSTER_BROKER_API_URL", "value": api_url(rec, cluster_domain)},
            {"name": "RECLUSTER_BROKER_CREDENTIALS_FILE", "value": CREDENTIALS_DIR},
            {"name": "RECLUSTER_BROKER_DATA_DIR", "value": BROKER_DATA_DIR},
            {"name": "RECLUSTER_BROKER_PORT", "value": str(BROKER_PORT)},
            # trust only the cluster's CA when calling the REST API, as the rigger does
            {"name": "RECLUSTER_BROKER_CA_FILE", "value": CA_FILE},
            *log_format_env(log_format, None),
        ],
        "ports": [{"name": "broker", "containerPort": BROKER_PORT, "protocol": "TCP"}],
        "resources": resources.manifest()
        if resources is not None
        else copy.deepcopy(DEFAULT_BROKER_RESOURCES),
        "readinessProbe": {"tcpSocket": {"port": "broker"}, "periodSeconds": 10},
        "securityContext": container_security_context(),
        "volumeMounts": [credentials_mount(), ca_mount(), {"name": "data", "mountPath": BROKER_DATA_DIR}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(rec, broker_name(rec), role=BROKER_ROLE),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(rec, BROKER_ROLE)},
            "template": {
                "metadata": {"labels": object_labels(rec, BROKER_ROLE)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(),
                    **scheduling(rec),
                    "containers": [container],
                    "volumes": [
                        credentials_volume(rec),
                        ca_volume(rec),
                        {"name": "data", "persistentVolumeClaim": {"claimName": broker_name(rec)}},
                    ],
                },
            },
        },
    }


def build_broker_service(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(rec, broker_name(rec), role=BROKER_ROLE),
        "spec": {
            "selector": selector_labels(rec, BROKER_ROLE),
            "ports": [{"name": "broker", "port": BROKER_PORT, "targetPort": "broker", "protocol": "TCP"}],
        },
    }
