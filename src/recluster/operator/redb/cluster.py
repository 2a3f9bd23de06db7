"""Reaching the REST API of the cluster a REDB names: the REC, its credentials and CA (verified
TLS, the REC controller's clients), and the first node pod that answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from recluster.api.engine_versions import bundled_names, default_name
from recluster.api.rec import API_VERSION, KIND, RedisEnterpriseCluster
from recluster.api.redb import RedisEnterpriseDatabase
from recluster.api.validation import parse_rec, plain
from recluster.clients.cluster_api import ClusterApi
from recluster.clients.kubernetes import Kube
from recluster.operator.context import Context
from recluster.operator.rec.cluster import ClusterClient, Credentials, NodePod, node_pods
from recluster.operator.redb.secret import secret_value
from recluster.operator.specs.names import (
    credentials_secret_name,
    node_selector_labels,
    tls_secret_name,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClusterUnreachable(Exception):
    """No node pod of the cluster answered (or its credentials/CA are not there yet)."""


def rec_versions(rec_body: dict[str, Any]) -> list[str] | None:
    """The engine versions a REC's cluster runs (its status.bundledDatabaseVersions), None before the
    operator has read them: a REDB's redisVersion is then checked by the cluster when it is created."""
    bundled = (rec_body.get("status") or {}).get("bundledDatabaseVersions")
    return bundled_names(bundled) if isinstance(bundled, list) and bundled else None


def rec_default_version(rec_body: dict[str, Any]) -> str | None:
    """The version a REC's cluster gives new databases (the bundled entry marked isDefault), what a
    REDB's `redisVersion: latest` follows; None before the operator has read it."""
    bundled = (rec_body.get("status") or {}).get("bundledDatabaseVersions")
    return default_name(bundled) if isinstance(bundled, list) else None


async def find_rec(kube: Kube, namespace: str, name: str | None) -> dict[str, Any] | None:
    """The REC a REDB names, or the only REC of the namespace when it names none."""
    if name:
        return await kube.get(API_VERSION, KIND, namespace, name)
    items = await kube.list(API_VERSION, KIND, namespace)
    return items[0] if len(items) == 1 else None


def rec_model(body: dict[str, Any]) -> RedisEnterpriseCluster | None:
    rec, _ = parse_rec(plain(body))
    return rec


class DatabaseCluster:
    """REST calls to one REC's cluster, tried on each ready node pod in turn."""

    def __init__(self, client: ClusterClient, pods: list[NodePod]) -> None:
        self.client = client
        self.pods = pods

    async def call(self, action: Callable[[ClusterApi], Awaitable[T]]) -> T:
        """Run `action` against the first pod that answers. A refusal by the API (ClusterApiError)
        is an answer and propagates; a connection failure tries the next pod."""
        failures = []
        for pod in self.pods:
            try:
                async with self.client.api(pod) as api:
                    return await action(api)
            except (httpx.TransportError, OSError) as exc:
                failures.append(f"{pod.name}: {type(exc).__name__}")
        raise ClusterUnreachable("no node pod answers: " + (", ".join(failures) or "no ready node pod"))


def usable(pods: list[NodePod]) -> list[NodePod]:
    """The pods to try, ready ones first: they are members with quorum; the others may still
    answer reads."""
    return sorted((p for p in pods if p.ip and not p.deleting), key=lambda p: (not p.ready, p.ordinal))


async def connect(ctx: Context, rec_body: dict[str, Any]) -> DatabaseCluster:
    """The REC's cluster, with its CA and credentials as its Secrets hold them now and its node pods
    as listed now (the REST clients are the ones kept for the REC: operator/connections.py)."""
    rec = rec_model(rec_body)
    if rec is None:
        raise ClusterUnreachable(f"RedisEnterpriseCluster {rec_body['metadata']['name']} has an invalid spec")
    kube, namespace = ctx.kube, rec.namespace
    tls = await kube.get("v1", "Secret", namespace, tls_secret_name(rec))
    creds = await kube.get("v1", "Secret", namespace, credentials_secret_name(rec))
    ca_pem = secret_value(tls, "ca.crt")
    username, password = secret_value(creds, "username"), secret_value(creds, "password")
    if not ca_pem or not password:
        raise ClusterUnreachable("the cluster's CA or credentials are not there yet")
    selector = ",".join(f"{k}={v}" for k, v in node_selector_labels(rec).items())
    pods = node_pods(rec, await kube.list("v1", "Pod", namespace, selector))
    credentials = Credentials(username or rec.spec.username, password)
    client = await ctx.clusters.connect(rec, ca_pem, credentials, ctx.settings.cluster_domain)
    ctx.clusters.pods_listed(client, pods)
    return DatabaseCluster(client, usable(pods))


def known_cluster(ctx: Context, namespace: str, rec_name: str) -> DatabaseCluster | None:
    """The REC's cluster as last connected (by either controller), without reading anything: for a
    check that falls back to `connect` when the cluster does not answer it."""
    client = ctx.clusters.cached(namespace, rec_name)
    if client is None or client.credentials is None:
        return None
    return DatabaseCluster(client, usable(client.pods))


def other_ports(bdbs: list[dict[str, Any]], redb: RedisEnterpriseDatabase | str) -> list[int]:
    """Ports of the cluster's databases other than this REDB's."""
    name = redb if isinstance(redb, str) else redb.metadata.name
    return [int(b["port"]) for b in bdbs if b.get("name") != name and b.get("port")]
