"""The optional Open Service Broker (`serviceBrokerSpec.enabled`): Deployment, Service and PVC
`<rec>-service-broker` (the contract's suggested name). The PVC keeps the broker's instance and
binding records; it belongs to the REC like the rest (unlike node volumes, it holds no data). The
broker serves HTTPS with the certificate of Secret `<rec>-service-broker-tls` and authenticates
platforms with the credential of Secret `<rec>-service-broker` (specs/secrets.py), never the REC
admin's, which it keeps for its own calls to the REST API."""

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
    broker_auth_secret_name,
    broker_name,
    broker_tls_secret_name,
    object_labels,
    selector_labels,
    service_domain,
)
from recluster.operator.specs.pod import (
    CA_FILE,
    CREDENTIALS_DIR,
    DEFAULT_PULL_POLICY,
    SECRET_FILE_MODE,
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
BROKER_AUTH_DIR = "/etc/recluster/broker-auth"  # username, password: what platforms authenticate with
BROKER_TLS_DIR = "/etc/recluster/broker-tls"  # tls.crt, tls.key: what it serves HTTPS with
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
    rigger_spec = rec.spec.services_rigger_spec
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
            {"name": "RECLUSTER_BROKER_AUTH_DIR", "value": BROKER_AUTH_DIR},
            {"name": "RECLUSTER_BROKER_TLS_CERT", "value": f"{BROKER_TLS_DIR}/tls.crt"},
            {"name": "RECLUSTER_BROKER_TLS_KEY", "value": f"{BROKER_TLS_DIR}/tls.key"},
            # bindings name a database's Service as the rigger makes it, in the REC's namespace
            {"name": "RECLUSTER_BROKER_SERVICE_DOMAIN", "value": service_domain(rec, cluster_domain)},
            {
                "name": "RECLUSTER_BROKER_DATABASE_SERVICE_TYPE",
                "value": rigger_spec.database_service_type if rigger_spec else "cluster_ip,headless",
            },
            {
                "name": "RECLUSTER_BROKER_SERVICE_NAMING",
                "value": rigger_spec.service_naming if rigger_spec else "bdb_name",
            },
            *log_format_env(log_format, None),
        ],
        "ports": [{"name": "broker", "containerPort": BROKER_PORT, "protocol": "TCP"}],
        "resources": resources.manifest()
        if resources is not None
        else copy.deepcopy(DEFAULT_BROKER_RESOURCES),
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "broker", "scheme": "HTTPS"},
            "periodSeconds": 10,
        },
        "securityContext": container_security_context(),
        "volumeMounts": [
            credentials_mount(),
            ca_mount(),
            {"name": "broker-auth", "mountPath": BROKER_AUTH_DIR, "readOnly": True},
            {"name": "broker-tls", "mountPath": BROKER_TLS_DIR, "readOnly": True},
            {"name": "data", "mountPath": BROKER_DATA_DIR},
        ],
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
                        _secret_volume("broker-auth", broker_auth_secret_name(rec), ("username", "password")),
                        _secret_volume("broker-tls", broker_tls_secret_name(rec), ("tls.crt", "tls.key")),
                        {"name": "data", "persistentVolumeClaim": {"claimName": broker_name(rec)}},
                    ],
                },
            },
        },
    }


def _secret_volume(name: str, secret: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Only these keys of the Secret, as files readable by the pod's group (not `ca.crt` of the TLS
    Secret: that is for platforms)."""
    return {
        "name": name,
        "secret": {
            "secretName": secret,
            "defaultMode": SECRET_FILE_MODE,
            "items": [{"key": key, "path": key} for key in keys],
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
