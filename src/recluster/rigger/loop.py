"""The services rigger's loop: observe (node pods, the cluster's databases through the REST API,
the REDBs for secret names and Service ports), plan (pure, plan.py), act (Services, pod labels, the
secrets' `service_names`). Level-based: every pass computes everything again, at least every
`resync` seconds, and at once when a Sentinel announces a new master (`+switch-master`): the
database's label moves to the new master's pod before the cluster's REST API has even recorded the
new role, so the Services follow a failover within moments."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import Kube, KubeError
from recluster.clients.redis_retry import no_retry
from recluster.operator.rec.nodeapi import node_api
from recluster.operator.redb.secret import service_names_patch
from recluster.rigger.plan import (
    APP,
    APP_LABEL,
    CLUSTER_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NODE_ROLE,
    ROLE_LABEL,
    Database,
    Plan,
    Pod,
    Settings,
    plan,
    pod_of_node_name,
)

log = logging.getLogger(__name__)

SENTINEL_PORT = 8001
SWITCH_MASTER = "+switch-master"
OVERRIDE_SECONDS = 15.0  # a Sentinel's word beats the REST API's for this long (the API catches up in ~1 s)
REFRESH_PASSES = 12  # every this many passes, apply everything again even if nothing seemed to change
REDB_PATH = "/apis/app.redislabs.com/v1alpha1/namespaces/{namespace}/redisenterprisedatabases"


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


@dataclass
class State:
    bdbs: list[dict[str, Any]] | None = None  # last answer of the REST API
    pods: list[NodePod] = field(default_factory=list)
    overrides: dict[str, tuple[str, float]] = field(default_factory=dict)  # db name -> (node, when)
    applied: dict[str, str] = field(default_factory=dict)  # service/secret -> what we last wrote
    passes: int = 0


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class Rigger:
    def __init__(self, config: RiggerConfig, kube: Kube) -> None:
        self.config = config
        self.kube = kube
        self.state = State()
        self.wake = asyncio.Event()
        self.relabel = asyncio.Event()
        self.watchers: dict[str, asyncio.Task[None]] = {}
        # Only the replica holding the Lease edits Kubernetes; a standby observes (pods, the REST
        # API, Sentinel announcements) so that it acts on fresh knowledge the moment it leads.
        self.leading = False

    def lead(self) -> None:
        self.leading = True
        self.state.applied.clear()  # what another replica wrote is not known: apply everything once
        self.relabel.set()
        self.wake.set()

    def stand_by(self) -> None:
        self.leading = False

    # ---- observe -------------------------------------------------------------------------------

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

    async def databases_from_api(self, pods: list[NodePod]) -> list[dict[str, Any]] | None:
        """GET /v1/bdbs from the first pod that answers (ready pods first), verified against the
        cluster's CA for the pod's stable name. None when none answers."""
        ca_pem = self.config.ca_file.read_text()
        username, password = self.config.credentials()
        for pod in sorted(pods, key=lambda p: not p.ready):
            if not pod.ip:
                continue
            server_name = f"{pod.name}.{self.config.api_host}"
            try:
                async with node_api(pod.ip, server_name, ca_pem, username, password, timeout=5.0) as api:
                    bdbs: list[dict[str, Any]] = await api.bdbs()
                    return bdbs
            except (httpx.HTTPError, ClusterApiError, OSError) as exc:
                log.debug("REST API of %s does not answer: %s", pod.name, type(exc).__name__)
        return None

    async def redbs(self) -> dict[str, dict[str, Any]]:
        """REDBs of the namespace by name ({} when they cannot be read)."""
        try:
            result = await self.kube.request("GET", REDB_PATH.format(namespace=self.config.namespace))
        except KubeError as exc:
            log.debug("cannot list REDBs: %s", exc)
            return {}
        return {item["metadata"]["name"]: item for item in result.get("items", [])}

    async def own_services(self) -> list[str]:
        selector = f"{CLUSTER_LABEL}={self.config.cluster},{MANAGED_BY_LABEL}={MANAGED_BY}"
        items = await self.kube.list("v1", "Service", self.config.namespace, selector)
        return [s["metadata"]["name"] for s in items]

    # ---- decide --------------------------------------------------------------------------------

    def master_pod(self, bdb: dict[str, Any], pods: list[NodePod]) -> str | None:
        names = [p.name for p in pods]
        ips = {p.name: p.ip for p in pods if p.ip}
        override = self.state.overrides.get(str(bdb.get("name")))
        if override is not None and time.monotonic() - override[1] < OVERRIDE_SECONDS:
            pod = pod_of_node_name(override[0], names, ips)
            if pod is not None:
                return pod
        endpoints = bdb.get("endpoints") or []
        node_name = str(endpoints[0].get("dns_name") or "") if endpoints else ""
        return pod_of_node_name(node_name, names, ips)

    def databases(
        self, bdbs: list[dict[str, Any]], pods: list[NodePod], redbs: dict[str, Any]
    ) -> list[Database]:
        result = []
        for bdb in bdbs:
            if bdb.get("status") == "delete-pending" or not bdb.get("port"):
                continue
            name = str(bdb["name"])
            redb = redbs.get(name)
            if redb is not None and not self._redb_of_this_cluster(redb):
                redb = None
            spec = (redb or {}).get("spec") or {}
            secret = None
            owner = None
            if redb is not None:
                if spec.get("defaultUser", True):
                    secret = spec.get("databaseSecretName") or f"redb-{name}"
                owner = {
                    "apiVersion": redb["apiVersion"],
                    "kind": redb["kind"],
                    "name": name,
                    "uid": redb["metadata"]["uid"],
                }
            result.append(
                Database(
                    uid=int(bdb["uid"]),
                    name=name,
                    port=int(bdb["port"]),
                    master_pod=self.master_pod(bdb, pods),
                    service_port=spec.get("databaseServicePort"),
                    secret=secret,
                    owner=owner,
                )
            )
        return result

    def _redb_of_this_cluster(self, redb: dict[str, Any]) -> bool:
        named = ((redb.get("spec") or {}).get("redisEnterpriseCluster") or {}).get("name")
        return named in (None, "", self.config.cluster)

    # ---- act -----------------------------------------------------------------------------------

    async def act(self, todo: Plan, *, labels_only: bool = False) -> None:
        if not self.leading:
            return
        # labels first: they are what moves the Services' endpoints after a failover
        for pod, changes in todo.pod_labels.items():
            try:
                await self.kube.merge_patch(
                    "v1", "Pod", self.config.namespace, pod, {"metadata": {"labels": changes}}
                )
                log.info("pod %s labels: %s", pod, ", ".join(f"{k}={v or '-'}" for k, v in changes.items()))
            except KubeError as exc:
                if exc.status != 404:
                    raise
        if labels_only:
            return
        refresh = self.state.passes % REFRESH_PASSES == 0
        for service in todo.services:
            name = service["metadata"]["name"]
            text = json.dumps(service, sort_keys=True)
            if not refresh and self.state.applied.get(f"service/{name}") == text:
                continue
            await self.kube.apply(service)
            self.state.applied[f"service/{name}"] = text
        for name in todo.delete_services:
            await self.kube.delete("v1", "Service", self.config.namespace, name)
            self.state.applied.pop(f"service/{name}", None)
            log.info("deleted Service %s (its database is gone)", name)
        for secret, names in todo.secret_names.items():
            text = ",".join(names)
            if not refresh and self.state.applied.get(f"secret/{secret}") == text:
                continue
            try:
                await self.kube.merge_patch(
                    "v1", "Secret", self.config.namespace, secret, service_names_patch(names)
                )
                self.state.applied[f"secret/{secret}"] = text
            except KubeError as exc:  # not created yet (the operator makes it): next pass
                log.debug("secret %s: %s", secret, exc)

    async def one_pass(self) -> None:
        self.state.passes += 1
        pods = await self.node_pods()
        self.state.pods = pods
        await self.watch_sentinels(pods)
        bdbs = await self.databases_from_api(pods)
        if bdbs is None:
            log.warning(
                "no node of cluster %s answers its REST API; keeping Services as they are",
                self.config.cluster,
            )
            if self.state.bdbs is None:
                return
            await self.fast_relabel()
            return
        self.state.bdbs = bdbs
        redbs = await self.redbs()
        databases = self.databases(bdbs, pods, redbs)
        # the API agreeing with a Sentinel's announcement (a pod IP) ends the override
        names, ips = [p.name for p in pods], {p.name: p.ip for p in pods if p.ip}
        for db in databases:
            override = self.state.overrides.get(db.name)
            bdb = next(b for b in bdbs if b.get("name") == db.name)
            endpoints = bdb.get("endpoints") or []
            api_node = str(endpoints[0].get("dns_name") or "") if endpoints else ""
            if override is None or not api_node:
                continue
            api_pod = pod_of_node_name(api_node, names, ips)
            if api_pod is not None and api_pod == pod_of_node_name(override[0], names, ips):
                self.state.overrides.pop(db.name, None)
        todo = plan(
            self.config.settings,
            databases,
            [Pod(p.name, p.labels) for p in pods],
            await self.own_services(),
        )
        await self.act(todo)

    async def fast_relabel(self) -> None:
        """Move master labels from what is known now (cached databases and pods, fresh Sentinel
        announcements), without waiting for the REST API."""
        if self.state.bdbs is None or not self.leading:
            return
        pods = self.state.pods
        databases = self.databases(self.state.bdbs, pods, {})
        todo = plan(self.config.settings, databases, [Pod(p.name, p.labels) for p in pods], [])
        await self.act(todo, labels_only=True)
        for pod, changes in todo.pod_labels.items():
            cached = next((p for p in pods if p.name == pod), None)
            if cached is not None:
                for key, value in changes.items():
                    if value is None:
                        cached.labels.pop(key, None)
                    else:
                        cached.labels[key] = value

    # ---- Sentinel events -----------------------------------------------------------------------

    async def watch_sentinels(self, pods: list[NodePod]) -> None:
        wanted = {p.ip for p in pods if p.ip}
        for ip in list(self.watchers):
            if ip not in wanted:
                self.watchers.pop(ip).cancel()
        for ip in wanted:
            if ip not in self.watchers or self.watchers[ip].done():
                self.watchers[ip] = asyncio.create_task(self._watch(ip), name=f"sentinel {ip}")

    async def _watch(self, ip: str) -> None:
        """Follow one Sentinel's `+switch-master` announcements, reconnecting for ever."""
        while True:
            client = aioredis.Redis(retry=no_retry(), host=ip, port=SENTINEL_PORT, socket_connect_timeout=2.0)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(SWITCH_MASTER)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    self.on_switch_master(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("sentinel %s: %s", ip, type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(1.0)

    def on_switch_master(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        parts = text.split()
        if len(parts) != 5:
            return
        name, new_host = parts[0], parts[3]
        if name == "ccs":
            return
        previous = self.state.overrides.get(name)
        if previous is None or previous[0] != new_host:
            log.info("sentinel: database %s has a new master on %s", name, new_host)
        self.state.overrides[name] = (new_host, time.monotonic())
        self.relabel.set()
        self.wake.set()

    # ---- run -----------------------------------------------------------------------------------

    async def run(self) -> None:
        relabeler = asyncio.create_task(self._relabel_on_events())
        failures = 0
        try:
            while True:
                self.wake.clear()
                try:
                    await self.one_pass()
                    failures = 0
                    delay = self.config.resync
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # any failure is retried: the loop must live on
                    failures += 1
                    delay = min(30.0, 2.0 ** min(failures, 5))
                    log.warning("rigger pass failed (%s: %s); retry in %.0fs", type(exc).__name__, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=delay)
        finally:
            relabeler.cancel()
            for task in self.watchers.values():
                task.cancel()

    async def _relabel_on_events(self) -> None:
        while True:
            await self.relabel.wait()
            self.relabel.clear()
            try:
                await self.fast_relabel()
            except Exception as exc:
                log.warning("relabel after a failover failed (%s: %s)", type(exc).__name__, exc)
