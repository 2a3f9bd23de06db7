"""Pod pieces shared by the node, rigger and broker pods: security, scheduling, credentials."""

from __future__ import annotations

import copy
from typing import Any

from recluster.api.common import ImageSpec
from recluster.api.rec import RedisEnterpriseCluster
from recluster.logs import LOG_FORMAT_ENV
from recluster.operator.specs.names import credentials_secret_name, tls_secret_name

# The image's user (the Dockerfile adds uid 1001, as the original images do).
RUN_AS_USER = 1001
CREDENTIALS_VOLUME = "credentials"
CREDENTIALS_DIR = "/opt/redislabs/credentials"
# Group-readable (the pod's fsGroup), nobody else: the files hold the admin password.
SECRET_FILE_MODE = 0o440


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "runAsNonRoot": True,
        "fsGroup": RUN_AS_USER,
        # Only re-own a volume when its root is wrong: a large data volume would slow every restart.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


DEFAULT_PULL_POLICY = "IfNotPresent"


def image_fields(
    image_spec: ImageSpec | None, default_image: str, default_pull_policy: str = DEFAULT_PULL_POLICY
) -> dict[str, str]:
    """image and imagePullPolicy: the spec's, what it leaves out from the operator's defaults (its
    settings: the chart's image). The policy is always set: a `latest` tag would otherwise mean
    Always, and locally imported images cannot be pulled."""
    spec = image_spec or ImageSpec()
    return {
        "image": spec.image(default_image),
        "imagePullPolicy": str(spec.image_pull_policy or default_pull_policy),
    }


def log_format_env(log_format: str, extra: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """RECLUSTER_LOG_FORMAT=json for a pod the operator creates when the operator itself logs JSON
    (recluster.logs), unless the REC's extra environment sets it already (a duplicate name would be
    refused by the server-side apply). Nothing for plain logs: the pods' default."""
    named = {entry.get("name") for entry in extra or []}
    if log_format != "json" or LOG_FORMAT_ENV in named:
        return []
    return [{"name": LOG_FORMAT_ENV, "value": "json"}]


def field_env(name: str, field_path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def credentials_volume(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """The REC secret as files `username` and `password` (never env vars: those leak into
    `kubectl describe`, crash dumps and child processes)."""
    return {
        "name": CREDENTIALS_VOLUME,
        "secret": {
            "secretName": credentials_secret_name(rec),
            "defaultMode": SECRET_FILE_MODE,
            "items": [{"key": "username", "path": "username"}, {"key": "password", "path": "password"}],
        },
    }


CA_VOLUME = "cluster-ca"
CA_DIR = "/etc/recluster/ca"
CA_FILE = f"{CA_DIR}/ca.pem"


def ca_volume(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """Only the CA certificate of `<rec>-tls` (not the nodes' key): what a REST API client trusts."""
    return {
        "name": CA_VOLUME,
        "secret": {"secretName": tls_secret_name(rec), "items": [{"key": "ca.crt", "path": "ca.pem"}]},
    }


def ca_mount() -> dict[str, Any]:
    return {"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True}


def credentials_mount() -> dict[str, Any]:
    return {"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_DIR, "readOnly": True}


def scheduling(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """nodeSelector, tolerations, priority and pull secrets from the spec, for every pod of the REC."""
    spec = rec.spec
    fields: dict[str, Any] = {}
    if spec.node_selector:
        fields["nodeSelector"] = dict(spec.node_selector)
    if spec.pod_tolerations:
        fields["tolerations"] = copy.deepcopy(spec.pod_tolerations)
    if spec.priority_class_name:
        fields["priorityClassName"] = spec.priority_class_name
    if spec.pull_secrets:
        fields["imagePullSecrets"] = [{"name": secret.name} for secret in spec.pull_secrets]
    return fields
