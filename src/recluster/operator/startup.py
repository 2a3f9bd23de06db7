"""The operator's settings, read once from the environment (the Deployment sets them). What the
handlers share through kopf's memo is made from them at startup (context.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recluster import __version__
from recluster.api.common import GROUP
from recluster.logs import LOG_FORMAT_ENV, log_format

FIELD_MANAGER = "redis-enterprise-operator"
ANNOTATION_PREFIX = GROUP
DEFAULT_IMAGE = f"docker.io/library/recluster:{__version__}"
PULL_POLICIES = ("IfNotPresent", "Always", "Never")


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...]  # WATCH_NAMESPACE: one, a comma list; empty: every namespace
    pod_namespace: str  # where the Lease lives
    identity: str  # POD_NAME: who holds the Lease
    operator_name: str = "redis-enterprise-operator"
    # the image and pull policy of every pod the operator creates whose REC names none (the chart
    # passes its own `image`, so the node, rigger and broker pods run what the operator runs)
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    cluster_domain: str = "cluster.local"
    resync_seconds: float = 30.0  # a reconcile at least this often, changes or not
    # a settled REDB's resync reads only what can have moved (redb/settled.py); a full pass anyway
    # this often (what no cheap check sees: the REC's Secrets, an idle database's endpoint name)
    full_resync_seconds: float = 300.0
    busy_resync_seconds: float = 2.0  # while the cluster is converging
    http_port: int = 8080  # /healthz and /metrics
    http_host: str = "0.0.0.0"  # noqa: S104 - the probes and Prometheus come from outside the pod
    webhook_port: int = 0  # 0: no admission webhook server
    webhook_host: str = "0.0.0.0"  # noqa: S104
    webhook_cert_dir: Path | None = None  # tls.crt/tls.key/ca.crt; generated when unset
    webhook_names: tuple[str, ...] = ()  # serving certificate names when generated
    webhook_configuration: str = ""  # ValidatingWebhookConfiguration whose caBundle we keep current
    lease_name: str = "redis-enterprise-operator"
    lease_seconds: float = 15.0
    leader_election: bool = True
    json_logs: bool = False  # OPERATOR_LOG_FORMAT, else RECLUSTER_LOG_FORMAT, is json: the operator's own
    # RECLUSTER_LOG_FORMAT, every part's switch: passed on to the node, rigger and broker pods
    pods_log_format: str = "plain"
    kubeconfig: str | None = None

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        pod_namespace = env.get("POD_NAMESPACE") or _own_namespace() or "default"
        watch = env.get("WATCH_NAMESPACE")
        namespaces = tuple(
            n.strip() for n in (watch if watch is not None else pod_namespace).split(",") if n.strip()
        )
        service = env.get("OPERATOR_WEBHOOK_SERVICE", "admission")
        cert_dir = env.get("OPERATOR_WEBHOOK_CERT_DIR")
        return cls(
            namespaces=namespaces,
            pod_namespace=pod_namespace,
            identity=env.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}",
            operator_name=env.get("OPERATOR_NAME", "redis-enterprise-operator"),
            image=env.get("OPERATOR_DEFAULT_IMAGE") or DEFAULT_IMAGE,
            image_pull_policy=_pull_policy(env.get("OPERATOR_DEFAULT_IMAGE_PULL_POLICY") or "IfNotPresent"),
            cluster_domain=env.get("OPERATOR_CLUSTER_DOMAIN", "cluster.local"),
            resync_seconds=float(env.get("OPERATOR_RESYNC_SECONDS", "30")),
            full_resync_seconds=float(env.get("OPERATOR_FULL_RESYNC_SECONDS", "300")),
            http_port=int(env.get("OPERATOR_HTTP_PORT", "8080")),
            http_host=env.get("OPERATOR_HTTP_HOST", "0.0.0.0"),  # noqa: S104
            webhook_port=int(env.get("OPERATOR_WEBHOOK_PORT", "0")),
            webhook_host=env.get("OPERATOR_WEBHOOK_HOST", "0.0.0.0"),  # noqa: S104
            webhook_cert_dir=Path(cert_dir) if cert_dir else None,
            webhook_names=(
                service,
                f"{service}.{pod_namespace}",
                f"{service}.{pod_namespace}.svc",
                *(n for n in env.get("OPERATOR_WEBHOOK_NAMES", "").split(",") if n),
            ),
            webhook_configuration=env.get("OPERATOR_WEBHOOK_CONFIGURATION", ""),
            lease_name=env.get("OPERATOR_LEASE_NAME", env.get("OPERATOR_NAME", "redis-enterprise-operator")),
            lease_seconds=float(env.get("OPERATOR_LEASE_SECONDS", "15")),
            leader_election=env.get("OPERATOR_LEADER_ELECTION", "true").lower() != "false",
            json_logs=(env.get("OPERATOR_LOG_FORMAT") or env.get(LOG_FORMAT_ENV) or "").lower() == "json",
            pods_log_format=log_format(None, {LOG_FORMAT_ENV: env.get(LOG_FORMAT_ENV, "")}),
            kubeconfig=env.get("KUBECONFIG") or None,
        )


def _pull_policy(value: str) -> str:
    if value not in PULL_POLICIES:
        choices = ", ".join(PULL_POLICIES)
        raise ValueError(f"OPERATOR_DEFAULT_IMAGE_PULL_POLICY={value!r}: must be one of {choices}")
    return value


def _own_namespace() -> str | None:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else None
