"""What the rigger reads: the cluster's node pods, its databases through a node's REST API, the
REDBs of the namespace (secret names, Service ports, owners) and the Services, EndpointSlices and
legacy Endpoints carrying its labels. Reads only; a standby replica reads as the leader does."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from recluster.api import redb
from recluster.api.naming import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.clients.kubernetes import Kube, KubeError
from recluster.clients.node_api import node_api
from recluster.rigger.plan import MANAGED_BY, MANAGED_BY_LABEL, SLICE_MANAGED_BY_LABEL, Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

SLICE_API = "discovery.k8s.io/v1"
REDB_PATH = f"/apis/{redb.API_VERSION}/namespaces/{{namespace}}/{redb.PLURAL}"


@dataclass(frozen=True)
class RiggerConfig:
    cluster: str
    namespace: str
    api_url: str
    credentials_dir: Path
    ca_file: Path
    settings: Settings
    resync: float = 5.0

    @property
    def api_host(self) -> str:
        return urlsplit(self.api_url).hostname or self.cluster

    def credentials(self) -> tuple[str, str]:
        username = (self.credentials_dir / "username").read_text().strip()
        password = (self.credentials_dir / "password").read_text().strip()
        return username, password


@dataclass
class NodePod:
    name: str
    ip: str | None
    ready: bool
    labels: dict[str, str]


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class ClusterReader:
    def __init__(self, config: RiggerConfig, kube: Kube) -> None:
        self.config = config
        self.kube = kube
        # the CA of the cluster's TLS databases (REST `proxy_cert`), read while a TLS database
        # exists (it changes when the database CA rotates): the TLS sentinels are verified against it
        self.database_ca: str | None = None

    async def node_pods(self) -> list[NodePod]:
        selector = f"{APP_LABEL}={APP},{CLUSTER_LABEL}={self.config.cluster},{ROLE_LABEL}={NODE_ROLE}"
        items = await self.kube.list("v1", "Pod", self.config.namespace, selector)
        return [
            NodePod(
                name=p["metadata"]["name"],
                ip=p.get("status", {}).get("podIP"),
                ready=_ready(p) and not p["metadata"].get("deletionTimestamp"),
                labels=dict(p["metadata"].get("labels") or {}),
            )
            for p in items
        ]

    async def _on_api(self, pods: list[NodePod], call: Callable[[ClusterApi], Awaitable[T]]) -> T | None:
        """`call` on the REST API of the first pod that answers (ready pods first), verified against
        the cluster's CA for the pod's stable name. None when none answers."""
        ca_pem = self.config.ca_file.read_text()
        username, password = self.config.credentials()
        for pod in sorted(pods, key=lambda p: not p.ready):
            if not pod.ip:
                continue
            server_name = f"{pod.name}.{self.config.api_host}"
            try:
                async with node_api(pod.ip, server_name, ca_pem, username, password, timeout=5.0) as api:
                    return await call(api)
            except (httpx.HTTPError, ClusterApiError, OSError) as exc:
                log.debug("REST API of %s does not answer: %s", pod.name, type(exc).__name__)
        return None

    async def databases_from_api(self, pods: list[NodePod]) -> list[dict[str, Any]] | None:
        """GET /v1/bdbs (and the database CA when a database speaks TLS). None when no pod answers."""

        async def read(api: ClusterApi) -> list[dict[str, Any]]:
            bdbs: list[dict[str, Any]] = await api.bdbs()
            if any(b.get("tls_mode") == "enabled" for b in bdbs):
                self.database_ca = str((await api.certificates()).get("proxy_cert") or "") or None
            return bdbs

        return await self._on_api(pods, read)

    async def tell_external_addresses(self, pods: list[NodePod], changes: dict[int, list[str]]) -> None:
        """PUT each bdb's `external_addr` (its LoadBalancer Services' addresses: its TLS shards'
        certificates name them). A refusal is logged and asked again next pass."""

        async def tell(api: ClusterApi) -> bool:
            for uid, addresses in changes.items():
                try:
                    await api.update_bdb(uid, {"external_addr": addresses})
                    log.info("bdb %d is reached from outside the cluster at %s", uid, ", ".join(addresses) or
                             "no address now")
                except ClusterApiError as exc:
                    if exc.status >= 500:
                        raise
                    log.warning("the cluster refused bdb %d's external addresses %s: %s", uid, addresses,
                                exc.body.get("message") if isinstance(exc.body, dict) else exc.status)
            return True

        await self._on_api(pods, tell)

    async def redbs(self) -> dict[str, dict[str, Any]]:
        """REDBs of the namespace by name ({} when they cannot be read)."""
        try:
            result = await self.kube.request("GET", REDB_PATH.format(namespace=self.config.namespace))
        except KubeError as exc:
            log.debug("cannot list REDBs: %s", exc)
            return {}
        return {item["metadata"]["name"]: item for item in result.get("items", [])}

    def own_selector(self) -> str:
        """The labels of the rigger's Services, which kube-controller-manager copies onto the
        Endpoints and EndpointSlices it makes for them, and the rigger onto its slices."""
        return f"{CLUSTER_LABEL}={self.config.cluster},{MANAGED_BY_LABEL}={MANAGED_BY}"

    async def own_services(self) -> list[dict[str, Any]]:
        """The rigger's Services, whole (a LoadBalancer's status holds its address)."""
        return await self.kube.list("v1", "Service", self.config.namespace, self.own_selector())

    async def service_slices(self) -> tuple[list[str], list[str]]:
        """The EndpointSlices of the rigger's Services: (its own, everyone else's). The others are
        kube-controller-manager's, left from when the Services had a selector, or mirrored from their
        legacy Endpoints; both point at whichever master was current when kcm last wrote them."""
        items = await self.kube.list(SLICE_API, "EndpointSlice", self.config.namespace, self.own_selector())
        own: list[str] = []
        foreign: list[str] = []
        for item in items:
            managed_by = (item["metadata"].get("labels") or {}).get(SLICE_MANAGED_BY_LABEL)
            (own if managed_by == MANAGED_BY else foreign).append(item["metadata"]["name"])
        return own, foreign

    async def own_slices(self) -> list[dict[str, Any]]:
        """The EndpointSlices the rigger wrote (whole objects: a new leader compares them)."""
        return await self.kube.list(SLICE_API, "EndpointSlice", self.config.namespace,
                                    f"{SLICE_MANAGED_BY_LABEL}={MANAGED_BY},{CLUSTER_LABEL}={self.config.cluster}")

    async def service_endpoints(self) -> list[str]:
        """Legacy Endpoints of the rigger's Services (kcm's Endpoints controller made them while the
        Services had a selector; it copies the Service's labels)."""
        items = await self.kube.list("v1", "Endpoints", self.config.namespace, self.own_selector())
        return [e["metadata"]["name"] for e in items]
