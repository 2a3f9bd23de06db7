"""Pure builders of every Kubernetes object of a REC: `build_*(rec, ...) -> dict`, ready for
server-side apply. No I/O, no clock, no randomness: what varies (the password, the key pair, the
default image) is an argument. `build_rec_children` lists them all, so the reconciler can diff the
desired objects against the actual ones and apply them in order."""

from __future__ import annotations

from typing import Any

from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.specs.broker import build_broker_deployment, build_broker_pvc, build_broker_service
from recluster.operator.specs.pdb import build_pod_disruption_budget
from recluster.operator.specs.pod import DEFAULT_PULL_POLICY
from recluster.operator.specs.rbac import build_role, build_role_binding, build_service_account
from recluster.operator.specs.rigger import build_rigger_deployment
from recluster.operator.specs.secrets import (
    TlsMaterial,
    build_broker_auth_secret,
    build_broker_tls_secret,
    build_credentials_secret,
    build_tls_secret,
)
from recluster.operator.specs.services import build_nodes_service, build_prom_service, build_ui_service
from recluster.operator.specs.statefulset import build_statefulset

__all__ = [
    "TlsMaterial",
    "build_broker_auth_secret",
    "build_broker_deployment",
    "build_broker_pvc",
    "build_broker_service",
    "build_broker_tls_secret",
    "build_credentials_secret",
    "build_nodes_service",
    "build_pod_disruption_budget",
    "build_prom_service",
    "build_rec_children",
    "build_rigger_deployment",
    "build_role",
    "build_role_binding",
    "build_service_account",
    "build_statefulset",
    "build_tls_secret",
    "build_ui_service",
    "object_key",
]


def build_rec_children(
    rec: RedisEnterpriseCluster,
    *,
    image: str,
    password_secret_exists: bool,
    tls_secret_exists: bool,
    password: str | None = None,
    tls: TlsMaterial | None = None,
    replicas: int | None = None,
    cluster_domain: str = "cluster.local",
    pull_policy: str = DEFAULT_PULL_POLICY,
    log_format: str = "plain",
    broker_password: str | None = None,
    broker_tls: TlsMaterial | None = None,
) -> list[dict[str, Any]]:
    """Every object the REC should own, in apply order (identities and secrets before the pods that
    use them).

    - image, pull_policy: the default image and pull policy (the operator's settings: the chart's
      `image`, else `recluster:<version>` and IfNotPresent); the spec's image specs override them.
    - password_secret_exists: the credentials Secret is already there (made earlier, or by the user):
      it is then left out, never overwritten. Otherwise `password` is required.
    - tls_secret_exists: the `<rec>-tls` Secret is already there; otherwise `tls` (the nodes'
      certificate, for the names in `names.tls_names`) is required. Node pods cannot start without it.
    - replicas: the StatefulSet's, from `statefulset.statefulset_replicas` (None: the spec's nodes).
    - log_format: the operator's own (`json`: the node, rigger and broker pods log JSON too).
    - broker_password, broker_tls: with the broker enabled, its credential and certificate Secrets
      (`<rec>-service-broker`, `<rec>-service-broker-tls`) are made from them; None: the Secret is
      there already (made earlier or by the user) and is left out, never overwritten.
    """
    if not password_secret_exists and not password:
        raise ValueError("a password is needed to create the credentials Secret")
    if not tls_secret_exists and tls is None:
        raise ValueError("a certificate is needed to create the TLS Secret")
    children: list[dict[str, Any]] = []
    if rec.spec.create_service_account:
        children.append(build_service_account(rec))
    children += [build_role(rec), build_role_binding(rec)]
    if not password_secret_exists:
        assert password is not None
        children.append(build_credentials_secret(rec, password=password))
    if not tls_secret_exists:
        assert tls is not None
        children.append(build_tls_secret(rec, tls=tls))
    children += [
        build_nodes_service(rec),
        build_ui_service(rec),
        build_prom_service(rec),
        build_statefulset(
            rec,
            image=image,
            replicas=replicas,
            cluster_domain=cluster_domain,
            pull_policy=pull_policy,
            log_format=log_format,
        ),
        build_pod_disruption_budget(rec),
        build_rigger_deployment(
            rec, image=image, cluster_domain=cluster_domain, pull_policy=pull_policy, log_format=log_format
        ),
    ]
    broker = rec.spec.service_broker_spec
    if broker is not None and broker.enabled:
        if broker_password is not None:
            children.append(build_broker_auth_secret(rec, password=broker_password))
        if broker_tls is not None:
            children.append(build_broker_tls_secret(rec, tls=broker_tls))
        children += [
            build_broker_pvc(rec),
            build_broker_deployment(
                rec,
                image=image,
                cluster_domain=cluster_domain,
                pull_policy=pull_policy,
                log_format=log_format,
            ),
            build_broker_service(rec),
        ]
    return children


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, name): how desired and actual objects are matched."""
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]
