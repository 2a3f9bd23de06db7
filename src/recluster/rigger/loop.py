"""The services rigger's loop: observe (observe.py: node pods, the cluster's databases through the
REST API, the REDBs for secret names and Service ports), plan (pure, plan.py, with the masters of
masters.py), act (writer.py: EndpointSlices, pod labels, Services, the secrets' `service_names`).
Level-based: every pass computes everything again, at least every `resync` seconds, and at once when
a Sentinel announces a new master (`+switch-master`, sentinel_watch.py): the database's
EndpointSlices (and its label) move to the new master's pod before the cluster's REST API has even
recorded the new role, so the Services follow a failover within moments.

The Services have no selector and the rigger writes their EndpointSlices itself: with a selector,
kube-controller-manager rewrote them one Service at a time through a client limited to 20
requests/s, so after a node holding 64 masters stopped the last Service followed 8-12 s later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from recluster.clients.kubernetes import Kube
from recluster.rigger.masters import Masters
from recluster.rigger.observe import ClusterReader, NodePod, RiggerConfig
from recluster.rigger.plan import Pod, external_address_changes, external_addresses, plan
from recluster.rigger.sentinel_watch import SentinelWatch
from recluster.rigger.writer import Writer

log = logging.getLogger(__name__)

REFRESH_PASSES = 12  # every this many passes, apply everything again even if nothing seemed to change


def _plan_pods(pods: list[NodePod]) -> list[Pod]:
    return [Pod(p.name, p.labels, p.ip) for p in pods]


class Rigger:
    def __init__(self, config: RiggerConfig, kube: Kube) -> None:
        self.config = config
        self.reader = ClusterReader(config, kube)
        self.writer = Writer(config, kube, self.reader)
        self.masters = Masters(config.cluster)
        self.sentinels = SentinelWatch(self.on_switch_master)
        self.wake = asyncio.Event()
        self.relabel = asyncio.Event()
        # what the last pass read, for a relabel between passes
        self.bdbs: list[dict[str, Any]] | None = None  # last answer of the REST API
        self.redbs: dict[str, dict[str, Any]] = {}  # last REDBs read (owners of slices)
        self.pods: list[NodePod] = []
        self.passes = 0
        # kube-controller-manager's leftovers of Services that had a selector may exist: look for them
        self.clean_up = True
        # Only the replica holding the Lease edits Kubernetes; a standby observes (pods, the REST
        # API, Sentinel announcements) so that it acts on fresh knowledge the moment it leads.
        self.leading = False

    def lead(self) -> None:
        self.leading = True
        self.writer.forget()
        self.clean_up = True
        self.relabel.set()
        self.wake.set()

    def stand_by(self) -> None:
        self.leading = False

    def on_switch_master(self, data: bytes | str) -> None:
        if self.masters.announced(data):
            self.relabel.set()
            self.wake.set()

    async def one_pass(self) -> None:
        self.passes += 1
        pods = await self.reader.node_pods()
        self.pods = pods
        ips = {p.ip for p in pods if p.ip}
        self.sentinels.follow(ips, self.reader.database_ca)
        bdbs = await self.reader.databases_from_api(pods)
        self.sentinels.follow(ips, self.reader.database_ca)  # the CA is known once a TLS database is
        if bdbs is None:
            log.warning(
                "no node of cluster %s answers its REST API; keeping Services as they are",
                self.config.cluster,
            )
            if self.bdbs is None:
                return
            await self.fast_relabel()
            return
        self.bdbs = bdbs
        self.redbs = await self.reader.redbs()
        databases = self.masters.databases(bdbs, pods, self.redbs)
        self.masters.end_agreed(bdbs, pods)
        service_objects = await self.reader.own_services()
        services = [s["metadata"]["name"] for s in service_objects]
        # The slices are listed on a clean-up pass only (cheap at rest): otherwise each Service the
        # rigger made is taken to have its slice.
        clean_up = self.leading and (self.clean_up or self.passes % REFRESH_PASSES == 0)
        own_slices, foreign_slices = await self.reader.service_slices() if clean_up else (services, [])
        todo = plan(self.config.settings, databases, _plan_pods(pods), services, own_slices)
        if not self.leading:
            return
        await self.writer.act(todo, fast=False, refresh=self.passes % REFRESH_PASSES == 0)
        addresses = external_address_changes(bdbs, external_addresses(service_objects))
        if addresses:
            await self.reader.tell_external_addresses(pods, addresses)
        if clean_up:  # after act: kcm recreates what is deleted while a Service still has a selector
            self.clean_up = await self.writer.remove_leftovers(foreign_slices) > 0

    async def fast_relabel(self) -> None:
        """Move the EndpointSlices, then the master labels, from what is known now (cached
        databases, REDBs and pods, fresh Sentinel announcements), without waiting for the REST API."""
        if self.bdbs is None or not self.leading:
            return
        pods = self.pods
        databases = self.masters.databases(self.bdbs, pods, self.redbs)
        todo = plan(self.config.settings, databases, _plan_pods(pods), [])
        await self.writer.act(todo, fast=True, refresh=False)
        for pod, changes in todo.pod_labels.items():
            cached = next((p for p in pods if p.name == pod), None)
            if cached is not None:
                for key, value in changes.items():
                    if value is None:
                        cached.labels.pop(key, None)
                    else:
                        cached.labels[key] = value

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
            self.sentinels.cancel()

    async def _relabel_on_events(self) -> None:
        while True:
            await self.relabel.wait()
            self.relabel.clear()
            try:
                await self.fast_relabel()
            except Exception as exc:
                log.warning("relabel after a failover failed (%s: %s)", type(exc).__name__, exc)
