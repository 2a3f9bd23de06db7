"""The services rigger's loop: observe (node pods, the cluster's databases through the REST API,
the REDBs for secret names and Service ports), plan (pure, plan.py), act (EndpointSlices, pod
labels, Services, the secrets' `service_names`). Level-based: every pass computes everything again,
at least every `resync` seconds, and at once when a Sentinel announces a new master
(`+switch-master`): the database's EndpointSlices (and its label) move to the new master's pod
before the cluster's REST API has even recorded the new role, so the Services follow a failover
within moments.

The Services have no selector and the rigger writes their EndpointSlices itself: with a selector,
kube-controller-manager rewrote them one Service at a time through a client limited to 20
requests/s, so after a node holding 64 masters stopped the last Service followed 8-12 s later."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
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

from recluster.api import redb
from recluster.api.naming import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL, service_names_patch
from recluster.api.ports import SENTINEL_PORT
from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import Kube, KubeError
from recluster.clients.node_api import node_api
from recluster.clients.redis_retry import no_retry
from recluster.rigger.plan import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SLICE_MANAGED_BY_LABEL,
    Database,
    Plan,
    Pod,
    Settings,
    plan,
    pod_of_node_name,
    slice_matches,
)

log = logging.getLogger(__name__)

SWITCH_MASTER = "+switch-master"
OVERRIDE_SECONDS = 15.0  # a Sentinel's word beats the REST API's for this long (the API catches up in ~1 s)
REFRESH_PASSES = 12  # every this many passes, apply everything again even if nothing seemed to change
WRITERS = 8  # EndpointSlice writes at a time: after a node loss dozens change at once
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


@dataclass
class State:
    bdbs: list[dict[str, Any]] | None = None  # last answer of the REST API
    redbs: dict[str, dict[str, Any]] = field(default_factory=dict)  # last REDBs read (owners of slices)
    pods: list[NodePod] = field(default_factory=list)
    overrides: dict[str, tuple[str, float]] = field(default_factory=dict)  # db name -> (node, when)
    applied: dict[str, str] = field(default_factory=dict)  # service/slice/secret -> what we last wrote
    passes: int = 0
    # kube-controller-manager's leftovers of Services that had a selector may exist: look for them
    clean_up: bool = True
    # just took the Lease over: read the slices the previous leader wrote before writing any
    slices_unknown: bool = True


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def _text(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


def _plan_pods(pods: list[NodePod]) -> list[Pod]:
    return [Pod(p.name, p.labels, p.ip) for p in pods]


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
        self.state.clean_up = True
        self.state.slices_unknown = True
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

    def _own_selector(self) -> str:
        """The labels of the rigger's Services, which kube-controller-manager copies onto the
        Endpoints and EndpointSlices it makes for them, and the rigger onto its slices."""
        return f"{CLUSTER_LABEL}={self.config.cluster},{MANAGED_BY_LABEL}={MANAGED_BY}"

    async def own_services(self) -> list[str]:
        items = await self.kube.list("v1", "Service", self.config.namespace, self._own_selector())
        return [s["metadata"]["name"] for s in items]

    async def service_slices(self) -> tuple[list[str], list[str]]:
        """The EndpointSlices of the rigger's Services: (its own, everyone else's). The others are
        kube-controller-manager's, left from when the Services had a selector, or mirrored from their
        legacy Endpoints; both point at whichever master was current when kcm last wrote them."""
        items = await self.kube.list(SLICE_API, "EndpointSlice", self.config.namespace, self._own_selector())
        own: list[str] = []
        foreign: list[str] = []
        for item in items:
            managed_by = (item["metadata"].get("labels") or {}).get(SLICE_MANAGED_BY_LABEL)
            (own if managed_by == MANAGED_BY else foreign).append(item["metadata"]["name"])
        return own, foreign

    async def service_endpoints(self) -> list[str]:
        """Legacy Endpoints of the rigger's Services (kcm's Endpoints controller made them while the
        Services had a selector; it copies the Service's labels)."""
        items = await self.kube.list("v1", "Endpoints", self.config.namespace, self._own_selector())
        return [e["metadata"]["name"] for e in items]

    # ---- decide --------------------------------------------------------------------------------

    def master_pod(self, bdb: dict[str, Any], pods: list[NodePod]) -> tuple[str | None, str | None]:
        """(the pod holding the database's master, the master's IP if a fresh Sentinel announcement
        gave it: announcements are by IP, which is what the EndpointSlice needs)."""
        names = [p.name for p in pods]
        ips = {p.name: p.ip for p in pods if p.ip}
        override = self.state.overrides.get(str(bdb.get("name")))
        if override is not None and time.monotonic() - override[1] < OVERRIDE_SECONDS:
            pod = pod_of_node_name(override[0], names, ips)
            if pod is not None:
                return pod, _ipv4(override[0])
        endpoints = bdb.get("endpoints") or []
        node_name = str(endpoints[0].get("dns_name") or "") if endpoints else ""
        return pod_of_node_name(node_name, names, ips), None

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
            master_pod, master_ip = self.master_pod(bdb, pods)
            result.append(
                Database(
                    uid=int(bdb["uid"]),
                    name=name,
                    port=int(bdb["port"]),
                    master_pod=master_pod,
                    master_ip=master_ip,
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

    async def act(self, todo: Plan, *, fast: bool = False) -> None:
        """EndpointSlices first (they are what moves the traffic after a failover), then the pod
        labels; on a full pass also the Services, deletions and secret names. `fast` (after a
        Sentinel announcement): slices and labels only."""
        if not self.leading:
            return
        refresh = not fast and self.state.passes % REFRESH_PASSES == 0
        if self.state.slices_unknown:
            await self.observe_slices(todo.slices)
        await self.apply_slices(todo.slices, refresh=refresh)
        await self.patch_labels(todo.pod_labels)
        if fast:
            return
        await self.apply_services(todo.services, refresh=refresh)
        await self.delete_gone(todo)
        await self.patch_secrets(todo.secret_names, refresh=refresh)

    async def apply_slices(self, slices: list[dict[str, Any]], *, refresh: bool) -> None:
        """Server-side apply of the slices that changed since the last write, WRITERS at a time, in
        the plan's order (the Services clients use first). Every write is attempted; the first
        failure is raised afterwards, so the pass is retried."""
        changed = [s for s in slices if refresh or self.state.applied.get(_key(s)) != _text(s)]
        semaphore = asyncio.Semaphore(WRITERS)

        async def write(endpoint_slice: dict[str, Any]) -> None:
            async with semaphore:
                await self.kube.apply(endpoint_slice)
            key, text = _key(endpoint_slice), _text(endpoint_slice)
            if self.state.applied.get(key) != text:
                endpoint = endpoint_slice["endpoints"][0]
                log.info("%s -> %s (%s)", key, endpoint["targetRef"]["name"], endpoint["addresses"][0])
            self.state.applied[key] = text

        results = await asyncio.gather(*(write(s) for s in changed), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def observe_slices(self, wanted: list[dict[str, Any]]) -> None:
        """On taking the Lease over: count the slices that already say what is wanted as written,
        so that the first writes after a takeover (often during a node loss, when dozens of masters
        move) are only the ones that changed, not every slice again. A failed read writes them all."""
        try:
            items = await self.kube.list(SLICE_API, "EndpointSlice", self.config.namespace,
                                         f"{SLICE_MANAGED_BY_LABEL}={MANAGED_BY},{CLUSTER_LABEL}={self.config.cluster}")
        except KubeError as exc:
            log.info("cannot read the EndpointSlices before writing them (%s): writing all", exc)
            return
        finally:
            self.state.slices_unknown = False
        existing = {item["metadata"]["name"]: item for item in items}
        for endpoint_slice in wanted:
            have = existing.get(endpoint_slice["metadata"]["name"])
            if have is not None and slice_matches(have, endpoint_slice):
                self.state.applied.setdefault(_key(endpoint_slice), _text(endpoint_slice))

    async def patch_labels(self, pod_labels: dict[str, dict[str, str | None]]) -> None:
        for pod, changes in pod_labels.items():
            try:
                await self.kube.merge_patch(
                    "v1", "Pod", self.config.namespace, pod, {"metadata": {"labels": changes}}
                )
                log.info("pod %s labels: %s", pod, ", ".join(f"{k}={v or '-'}" for k, v in changes.items()))
            except KubeError as exc:
                if exc.status != 404:
                    raise

    async def apply_services(self, services: list[dict[str, Any]], *, refresh: bool) -> None:
        for service in services:
            key, text = _key(service), _text(service)
            if not refresh and self.state.applied.get(key) == text:
                continue
            await self.kube.apply(service)
            self.state.applied[key] = text

    async def delete_gone(self, todo: Plan) -> None:
        """The Services of databases that are gone, and their slices."""
        for name in todo.delete_services:
            await self.kube.delete("v1", "Service", self.config.namespace, name)
            self.state.applied.pop(f"service/{name}", None)
            log.info("deleted Service %s (its database is gone)", name)
        for name in todo.delete_slices:
            if await self.kube.delete(SLICE_API, "EndpointSlice", self.config.namespace, name):
                log.info("deleted EndpointSlice %s (its database is gone)", name)
            self.state.applied.pop(f"endpointslice/{name}", None)

    async def patch_secrets(self, secret_names: dict[str, list[str]], *, refresh: bool) -> None:
        for secret, names in secret_names.items():
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

    async def remove_leftovers(self, foreign_slices: list[str]) -> int:
        """What kube-controller-manager made for the rigger's Services while they had a selector,
        which it leaves once the selector is gone: its EndpointSlices, and the legacy Endpoints,
        which its EndpointSliceMirroring controller would mirror into one more slice pointing at a
        stale master (deleting them also makes it delete that mirror). How many were deleted."""
        deleted = 0
        for name in await self.service_endpoints():  # first: stops the mirroring
            if await self.kube.delete("v1", "Endpoints", self.config.namespace, name):
                deleted += 1
                log.info("deleted Endpoints %s (left from when its Service had a selector)", name)
        for name in foreign_slices:
            if await self.kube.delete(SLICE_API, "EndpointSlice", self.config.namespace, name):
                deleted += 1
                log.info("deleted EndpointSlice %s (kube-controller-manager's)", name)
        return deleted

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
        self.state.redbs = await self.redbs()
        databases = self.databases(bdbs, pods, self.state.redbs)
        self.end_overrides(databases, bdbs, pods)
        services = await self.own_services()
        # The slices are listed on a clean-up pass only (cheap at rest): otherwise each Service the
        # rigger made is taken to have its slice.
        clean_up = self.leading and (self.state.clean_up or self.state.passes % REFRESH_PASSES == 0)
        own_slices, foreign_slices = await self.service_slices() if clean_up else (services, [])
        todo = plan(self.config.settings, databases, _plan_pods(pods), services, own_slices)
        await self.act(todo)
        if clean_up:  # after act: kcm recreates what is deleted while a Service still has a selector
            self.state.clean_up = await self.remove_leftovers(foreign_slices) > 0

    def end_overrides(
        self, databases: list[Database], bdbs: list[dict[str, Any]], pods: list[NodePod]
    ) -> None:
        """The API agreeing with a Sentinel's announcement (a pod IP) ends the override."""
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

    async def fast_relabel(self) -> None:
        """Move the EndpointSlices, then the master labels, from what is known now (cached
        databases, REDBs and pods, fresh Sentinel announcements), without waiting for the REST API."""
        if self.state.bdbs is None or not self.leading:
            return
        pods = self.state.pods
        databases = self.databases(self.state.bdbs, pods, self.state.redbs)
        todo = plan(self.config.settings, databases, _plan_pods(pods), [])
        await self.act(todo, fast=True)
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
