"""StatefulSet `<rec>`: the cluster's nodes, one `redis-enterprise-node` container per pod.

Choices the contract leaves open, and why:
- updateStrategy OnDelete: the operator rolls the pods itself, one at a time, replicas first, with a
  planned failover off a pod before it goes (a RollingUpdate would restart by ordinal, masters included).
- podManagementPolicy Parallel: the operator orders the cluster's life itself (create on one pod,
  join the others through the REST API). OrderedReady would deadlock a full restart: pod 0 alone
  has no quorum, so it never becomes ready and pods 1.. would never be recreated.
- PVCs are retained on deletion and scale-down: data outlives the REC unless a human deletes it.
- The node pods mount no ServiceAccount token: the node daemons never talk to Kubernetes.
"""

from __future__ import annotations

import copy
from typing import Any

from recluster.api.quantity import format_bytes
from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import (
    NODE_CONTAINER,
    NODE_ROLE,
    VOLUME_CLAIM_TEMPLATE,
    node_selector_labels,
    nodes_service_name,
    object_labels,
    service_account_name,
    statefulset_name,
    tls_secret_name,
)
from recluster.operator.specs.pod import (
    CREDENTIALS_DIR,
    DEFAULT_PULL_POLICY,
    SECRET_FILE_MODE,
    container_security_context,
    credentials_mount,
    credentials_volume,
    field_env,
    image_fields,
    log_format_env,
    pod_security_context,
    scheduling,
)
from recluster.operator.specs.ports import API_PORT, METRICS_PORT, SENTINEL_PORT, UI_PORT

DATA_DIR = "/var/opt/redislabs"
TLS_DIR = "/etc/recluster/tls"
TLS_VOLUME = "tls"
# Unauthenticated HTTPS endpoints of the node daemon's REST API (port 9443, routers/health.py).
# Readiness answers 200 only when the node is a member of a cluster, its configuration store replica
# is in sync and its shards run; liveness answers 200 while the daemon's event loop runs.
READINESS_PATH = "/v1/ready"
LIVENESS_PATH = "/livez"
# A node hands its master shards over (planned failover) when it gets SIGTERM; an hour bounds
# that even for a slow cluster, without leaving a hung pod Terminating for the contract's year.
DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 3600


def node_environment(
    rec: RedisEnterpriseCluster, cluster_domain: str, log_format: str = "plain"
) -> list[dict[str, Any]]:
    """The node daemon's settings (RECLUSTER_NODE_*), among them its stable DNS name."""
    node_name = f"$(POD_NAME).{nodes_service_name(rec)}.{rec.namespace}.svc.{cluster_domain}"
    env = [
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_IP", "status.podIP"),
        field_env("NODE_NAME", "spec.nodeName"),
        {"name": "RECLUSTER_NODE_ADDR", "value": "$(POD_IP)"},
        {"name": "RECLUSTER_NODE_NAME", "value": node_name},
        {"name": "RECLUSTER_NODE_DATA_DIR", "value": DATA_DIR},
        {"name": "RECLUSTER_NODE_TLS_DIR", "value": TLS_DIR},
        {"name": "RECLUSTER_NODE_CREDENTIALS_FILE", "value": CREDENTIALS_DIR},
        # the database certificates name the Services in this namespace (`<db>.<ns>.svc...`)
        {"name": "RECLUSTER_NODE_SERVICE_DOMAIN", "value": f"{rec.namespace}.svc.{cluster_domain}"},
    ]
    if rec.spec.enforce_ipv4:
        env.append({"name": "ENFORCE_IPV4", "value": "true"})
    env += log_format_env(log_format, rec.spec.extra_env_vars)
    env += copy.deepcopy(rec.spec.extra_env_vars or [])
    return env


def _https_probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "api", "scheme": "HTTPS"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def node_container(
    rec: RedisEnterpriseCluster,
    image: str,
    cluster_domain: str,
    pull_policy: str = DEFAULT_PULL_POLICY,
    log_format: str = "plain",
) -> dict[str, Any]:
    return {
        "name": NODE_CONTAINER,
        **image_fields(rec.spec.redis_enterprise_image_spec, image, pull_policy),
        "command": ["recluster", "node"],
        "env": node_environment(rec, cluster_domain, log_format),
        "ports": [
            {"name": "api", "containerPort": API_PORT, "protocol": "TCP"},
            {"name": "sentinel", "containerPort": SENTINEL_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
            {"name": "ui", "containerPort": UI_PORT, "protocol": "TCP"},
        ],
        "resources": rec.spec.node_resources(),
        # Up to 10 minutes to start: a node may load a large data set before it answers.
        "startupProbe": _https_probe(LIVENESS_PATH, period=10, failures=60),
        "livenessProbe": _https_probe(LIVENESS_PATH, period=10, failures=6),
        "readinessProbe": _https_probe(READINESS_PATH, period=5, failures=3),
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": VOLUME_CLAIM_TEMPLATE, "mountPath": DATA_DIR},
            credentials_mount(),
            {"name": TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True},
        ],
    }


def default_anti_affinity(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """At most one node pod per host (or per rack, with rackAwarenessNodeLabel), required: two nodes
    on one host would let one host failure take the majority. Extra keys add more required terms."""
    keys = [rec.spec.rack_awareness_node_label or "kubernetes.io/hostname"]
    keys += [key for key in rec.spec.anti_affinity_additional_topology_keys or [] if key not in keys]
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": node_selector_labels(rec)}, "topologyKey": key} for key in keys
        ]
    }


def _volume_claim_template(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    persistent = rec.spec.persistent_spec
    assert persistent is not None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": format_bytes(rec.spec.volume_size_bytes())}},
    }
    if persistent.storage_class_name:
        spec["storageClassName"] = persistent.storage_class_name
    # Fixed labels only: claim templates are immutable, so an extraLabels edit must not change them.
    return {"metadata": {"name": VOLUME_CLAIM_TEMPLATE, "labels": node_selector_labels(rec)}, "spec": spec}


def _volumes(rec: RedisEnterpriseCluster) -> list[dict[str, Any]]:
    volumes = [
        credentials_volume(rec),
        {
            "name": TLS_VOLUME,
            "secret": {
                "secretName": tls_secret_name(rec),
                "defaultMode": SECRET_FILE_MODE,
                "items": [
                    {"key": "tls.crt", "path": "cert.pem"},
                    {"key": "tls.key", "path": "key.pem"},
                    {"key": "ca.crt", "path": "ca.pem"},
                ],
            },
        },
    ]
    if not rec.spec.persistence_enabled:
        volumes.insert(0, {"name": VOLUME_CLAIM_TEMPLATE, "emptyDir": {}})
    return volumes


# Sentinel resolves the peers' announced names (rec-N.rec.<ns>.svc.<domain>) in its main thread, on
# hello messages: a query sent to a CoreDNS pod on a failed node stalled it 5 s per try (the default),
# long enough for every sentinel to enter TILT for 30 s (bench/chaos.py, node-stop). A query now gives
# up after 1 s and is tried 3 times. (The names have five dots with cluster.local, so the default
# ndots:5 already tries them as absolute names first.)
NODE_DNS_CONFIG: dict[str, Any] = {
    "options": [
        {"name": "timeout", "value": "1"},
        {"name": "attempts", "value": "3"},
    ]
}


def statefulset_replicas(desired: int, current: int | None, *, top_node_gone: bool) -> int:
    """The StatefulSet's replicas for one reconcile. Made, or growing: the spec's `nodes`. Shrinking:
    one pod at a time, and only once the node in the highest pod has left the cluster (the
    reconciler removes it through the REST API first and says here whether it is gone)."""
    if current is None or desired >= current:
        return desired
    return current - 1 if top_node_gone else current


def build_statefulset(
    rec: RedisEnterpriseCluster,
    *,
    image: str,
    replicas: int | None = None,
    cluster_domain: str = "cluster.local",
    pull_policy: str = DEFAULT_PULL_POLICY,
    log_format: str = "plain",
) -> dict[str, Any]:
    """`replicas`: statefulset_replicas' answer (None: a StatefulSet not made yet, the spec's nodes);
    `image`, `pull_policy`: the defaults of what the REC's image spec leaves out."""
    spec = rec.spec
    pod_spec: dict[str, Any] = {
        "serviceAccountName": service_account_name(rec),
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": (
            spec.redis_enterprise_termination_grace_period_seconds
            if spec.redis_enterprise_termination_grace_period_seconds is not None
            else DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
        ),
        "affinity": {"podAntiAffinity": copy.deepcopy(spec.pod_anti_affinity or default_anti_affinity(rec))},
        "dnsConfig": copy.deepcopy(NODE_DNS_CONFIG),
        **scheduling(rec),
        "containers": [
            node_container(rec, image, cluster_domain, pull_policy, log_format),
            *copy.deepcopy(spec.side_containers_spec or []),
        ],
        "volumes": _volumes(rec),
    }
    template_metadata: dict[str, Any] = {"labels": object_labels(rec, NODE_ROLE)}
    if spec.pod_annotations:
        template_metadata["annotations"] = dict(spec.pod_annotations)
    sts_spec: dict[str, Any] = {
        "replicas": spec.nodes if replicas is None else replicas,
        "serviceName": nodes_service_name(rec),
        "selector": {"matchLabels": node_selector_labels(rec)},
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "OnDelete"},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "template": {"metadata": template_metadata, "spec": pod_spec},
    }
    if spec.persistence_enabled:
        sts_spec["volumeClaimTemplates"] = [_volume_claim_template(rec)]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": object_meta(rec, statefulset_name(rec), role=NODE_ROLE),
        "spec": sts_spec,
    }


# StatefulSet fields the apiserver refuses to change ("updates to statefulset spec for fields other
# than ... are forbidden"): a change there means orphan-delete and recreate, never an apply.
_IMMUTABLE_FIELDS = ("serviceName", "selector", "podManagementPolicy")


def statefulset_immutable_changes(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """The immutable spec fields on which `actual` differs from `desired` (claim templates compared
    by name, size, class and access modes, the parts we set)."""
    desired_spec, actual_spec = desired.get("spec", {}), actual.get("spec", {})
    changed = [
        f"spec.{field}" for field in _IMMUTABLE_FIELDS if desired_spec.get(field) != actual_spec.get(field)
    ]
    if _claims(desired_spec) != _claims(actual_spec):
        changed.append("spec.volumeClaimTemplates")
    return changed


def _claims(spec: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            template.get("metadata", {}).get("name"),
            template.get("spec", {}).get("resources", {}).get("requests", {}).get("storage"),
            template.get("spec", {}).get("storageClassName"),
            tuple(template.get("spec", {}).get("accessModes", [])),
        )
        for template in spec.get("volumeClaimTemplates", [])
    ]
