"""The cluster's life through its REST API: observe every node pod, create the cluster on the first
one, join the others, remove a node before its pod goes. One step per call: the reconcile loop calls
again, so a restarted operator picks up exactly where the cluster is (nothing is remembered here)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from recluster.api.engine_versions import bundled_versions
from recluster.api.rec import RedisEnterpriseCluster
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.clients.node_api import node_api
from recluster.operator.specs.names import cluster_fqdn, node_address, statefulset_name

log = logging.getLogger(__name__)

# bootstrap states of a node (GET /v1/bootstrap), plus ours for a node that does not answer
IDLE, CREATING, JOINING, COMPLETED, FAILED = (
    "idle",
    "creating_cluster",
    "joining_cluster",
    "completed",
    "error",
)
UNREACHABLE = "unreachable"
# ours too: the node answers, but not to the REC's credentials (it belongs to another cluster)
OTHER_CLUSTER = "other_credentials"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    license: str = ""

    def __repr__(self) -> str:  # never print a password
        return f"Credentials(username={self.username!r}, password=<redacted>)"


@dataclass
class NodePod:
    name: str
    ordinal: int
    ip: str | None
    ready: bool
    deleting: bool
    revision: str | None
    bootstrap: str = UNREACHABLE
    uid: int | None = None  # node uid in the cluster, once a member
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def member(self) -> bool:
        return self.bootstrap == COMPLETED


@dataclass
class ClusterView:
    pods: list[NodePod]
    nodes: list[dict[str, Any]]  # GET /v1/nodes from a member, [] when no member answers
    version: str | None = None
    # REC status.bundledDatabaseVersions from GET /v1/cluster; None: not read (or a node without engines)
    bundled_versions: list[dict[str, Any]] | None = None
    shards: list[dict[str, Any]] = field(default_factory=list)  # GET /v1/shards
    policy: dict[str, Any] | None = None  # GET /v1/cluster/policy; None: not read (or a node without it)

    @property
    def shards_in_sync(self) -> bool:
        """Every shard of every database runs and follows its master (the cluster's word)."""
        return all(shard.get("status") == "active" for shard in self.shards)

    @property
    def members(self) -> list[NodePod]:
        return [pod for pod in self.pods if pod.member]

    def pod(self, ordinal: int) -> NodePod | None:
        return next((pod for pod in self.pods if pod.ordinal == ordinal), None)


def policy_changes(rec: RedisEnterpriseCluster, actual: dict[str, Any]) -> dict[str, Any]:
    """The cluster policy settings that differ from what the spec asks (slaveHA): replicas of a
    down node always move, after the spec's grace."""
    wanted = {"slave_ha": True, "slave_ha_grace_period": rec.spec.slave_ha_grace_period_s()}
    return {key: value for key, value in wanted.items() if actual.get(key) != value}


def _ordinal(rec: RedisEnterpriseCluster, pod_name: str) -> int | None:
    prefix = statefulset_name(rec) + "-"
    suffix = pod_name[len(prefix) :] if pod_name.startswith(prefix) else ""
    return int(suffix) if suffix.isdigit() else None


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_pods(rec: RedisEnterpriseCluster, pods: list[dict[str, Any]]) -> list[NodePod]:
    """The StatefulSet's pods, by ordinal (pods with other names are ignored)."""
    result = []
    for pod in pods:
        ordinal = _ordinal(rec, pod["metadata"]["name"])
        if ordinal is None:
            continue
        result.append(
            NodePod(
                name=pod["metadata"]["name"],
                ordinal=ordinal,
                ip=pod.get("status", {}).get("podIP"),
                ready=_ready(pod),
                deleting=pod["metadata"].get("deletionTimestamp") is not None,
                revision=pod["metadata"].get("labels", {}).get("controller-revision-hash"),
                raw=pod,
            )
        )
    return sorted(result, key=lambda p: p.ordinal)


class ClusterClient:
    """Verified REST API clients of one REC's node pods: one per pod, kept across calls and
    reconciles (operator/connections.py keeps one ClusterClient per REC while its CA and
    credentials stay), so a call reuses a pooled connection instead of a new TLS context and
    handshake each time."""

    def __init__(
        self, rec: RedisEnterpriseCluster, ca_pem: str, credentials: Credentials | None, cluster_domain: str
    ) -> None:
        self.rec, self.ca_pem, self.credentials, self.cluster_domain = (
            rec,
            ca_pem,
            credentials,
            cluster_domain,
        )
        self._apis: dict[tuple[str, str], ClusterApi] = {}
        self.verified_at: dict[str, float] = {}  # managed user -> when its password was last tried
        self.pods: list[NodePod] = []  # the node pods as last listed (by either controller)

    @property
    def identity(self) -> tuple[object, ...]:
        """What the clients are made of: a change means new clients."""
        creds = self.credentials
        login = (creds.username, creds.password) if creds else None
        return (self.rec.metadata.uid, self.ca_pem, login, self.cluster_domain)

    def server_name(self, pod: NodePod) -> str:
        return node_address(self.rec, pod.name, self.cluster_domain)

    @contextlib.asynccontextmanager
    async def api(self, pod: NodePod) -> AsyncIterator[ClusterApi]:
        """The pod's client (made on first use; closed only by `forget_pods` or `aclose`)."""
        assert pod.ip is not None
        key = (pod.ip, self.server_name(pod))
        api = self._apis.get(key)
        if api is None:
            creds = self.credentials
            api = node_api(
                pod.ip,
                key[1],
                self.ca_pem,
                creds.username if creds else None,
                creds.password if creds else None,
            )
            self._apis[key] = api
        yield api

    def remember_pods(self, pods: list[NodePod]) -> list[ClusterApi]:
        """Record the node pods as listed now; the clients of pods gone (or with a new address),
        for the caller to close once calls in flight are over."""
        self.pods = pods
        current = {(pod.ip, self.server_name(pod)) for pod in pods if pod.ip}
        gone = [key for key in self._apis if key not in current]
        return [self._apis.pop(key) for key in gone]

    def clients(self) -> list[ClusterApi]:
        """Every client made, handed over (for closing): the ClusterClient is done with."""
        apis, self._apis = list(self._apis.values()), {}
        return apis

    async def probe(self, pod: NodePod) -> None:
        """Fill in the pod's bootstrap state and node uid."""
        if pod.ip is None or pod.deleting:
            return
        try:
            async with self.api(pod) as api:
                answer = await api.bootstrap_status()
        except ClusterApiError as exc:
            if exc.status == 401:  # a member of a cluster made with other credentials
                pod.bootstrap = OTHER_CLUSTER
            log.debug("node pod %s refuses: %s", pod.name, exc.status)
            return
        except (httpx.HTTPError, OSError) as exc:
            log.debug("node pod %s does not answer: %s", pod.name, type(exc).__name__)
            return
        pod.bootstrap = str(answer.get("bootstrap_status", {}).get("state", UNREACHABLE))
        uid = answer.get("local_node_info", {}).get("uid")
        pod.uid = int(uid) if uid is not None else None

    async def observe(self, pods: list[NodePod]) -> ClusterView:
        await asyncio.gather(*(self.probe(pod) for pod in pods))
        view = ClusterView(pods=pods, nodes=[])
        for member in view.members:
            try:
                async with self.api(member) as api:
                    view.nodes = await api.nodes()
                    view.shards = await api.shards()
                    cluster = await api.cluster()
                    view.version = str(cluster.get("software_version") or "") or None
                    view.bundled_versions = bundled_versions(cluster) or None
                    view.policy = await self._policy(api)
                break
            except (httpx.HTTPError, ClusterApiError, OSError) as exc:
                log.debug("member %s cannot list nodes: %s", member.name, type(exc).__name__)
        return view

    @staticmethod
    async def _policy(api: ClusterApi) -> dict[str, Any] | None:
        try:
            return await api.policy()
        except ClusterApiError as exc:
            if exc.status == 404:  # a node of an older image (mid-upgrade) has no policy to set
                return None
            raise

    async def put_policy(self, via: NodePod, changes: dict[str, Any]) -> None:
        async with self.api(via) as api:
            await api.put_policy(changes)

    async def create_cluster(self, pod: NodePod, license_text: str = "") -> None:
        assert self.credentials is not None
        async with self.api(pod) as api:
            await api.create_cluster(
                cluster_fqdn(self.rec, self.cluster_domain),
                self.credentials.username,
                self.credentials.password,
                license_text,
            )

    async def join_cluster(self, pod: NodePod, members: list[NodePod]) -> None:
        assert self.credentials is not None
        async with self.api(pod) as api:
            await api.join_cluster(
                [self.server_name(m) for m in members], self.credentials.username, self.credentials.password
            )

    async def start_remove(self, via: NodePod, uid: int) -> str | None:
        """Start removing node `uid` (or find the removal in progress); the action's uid."""
        async with self.api(via) as api:
            try:
                action = await api.remove_node(uid)
            except ClusterApiError as exc:
                if exc.status == 404:  # already removed (our view was older than the cluster)
                    return None
                if exc.status != 409:
                    raise
                action = await api.request("GET", f"/v1/nodes/{uid}/actions/remove")
        return str(action.get("uid") or action.get("action_uid") or "") or None

    async def action_status(self, via: NodePod, action_uid: str) -> str:
        async with self.api(via) as api:
            return str((await api.action(action_uid)).get("status", ""))

    def orphaned_nodes(self, view: ClusterView, replicas: int) -> list[int]:
        """Uids of cluster members whose pod the StatefulSet no longer has (ordinal >= replicas, no
        pod): a node that rejoined while its pod was being scaled away. Such a member counts in
        every majority and can never answer, so it must be removed through the API."""
        orphans = []
        for node in view.nodes:
            first_label = str(node.get("name") or "").split(".", 1)[0]
            ordinal = _ordinal(self.rec, first_label)
            if ordinal is not None and ordinal >= replicas and view.pod(ordinal) is None:
                orphans.append(int(node["uid"]))
        return orphans

    def node_uid(self, view: ClusterView, pod: NodePod) -> int | None:
        """The cluster's uid of the node that runs in `pod` (by its stable name)."""
        name = self.server_name(pod)
        for node in view.nodes:
            if name in (node.get("name"), node.get("hostname")):
                return int(node["uid"])
        return pod.uid
