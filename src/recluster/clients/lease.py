"""Leader election with a coordination.k8s.io Lease: exactly one replica acts (the operator's
reconcilers, the services rigger).

Why a Lease and not kopf peering: peering needs its own cluster-wide CRDs (without them kopf runs
standalone, silently), pauses every replica when two share a priority, and fails over only after a
60 s lifetime. A Lease is a core API object under a namespaced Role, the Kubernetes-standard way,
and its timing is ours. A replica that cannot renew in time stops acting before another one can
take over (`keep` raises LeaseLost at 2/3 of the duration)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from recluster.clients.kubernetes import Kube, KubeError, resource_path

log = logging.getLogger(__name__)

API = "coordination.k8s.io/v1"


class LeaseLost(Exception):
    pass


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


MIN_SECONDS = 2.0  # shorter and a busy apiserver's latency alone would make the holder give up


class LeaderLease:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        seconds: float,
        on_change: Callable[[bool], object] | None = None,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.seconds = max(MIN_SECONDS, seconds)
        self.on_change = on_change or (lambda leading: None)  # told when this replica leads or stops

    def _body(self, existing: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
        spec = dict((existing or {}).get("spec") or {})
        transitions = int(spec.get("leaseTransitions") or 0)
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = _micro(now)
            transitions += 1 if existing else 0
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=max(1, round(self.seconds)),
            renewTime=_micro(now),
            leaseTransitions=transitions,
        )
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if existing:
            metadata["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return {"apiVersion": API, "kind": "Lease", "metadata": metadata, "spec": spec}

    async def try_acquire(self) -> bool:
        """Take or renew the Lease when it is free, expired or ours; optimistic concurrency
        (resourceVersion) makes two candidates never both win."""
        now = dt.datetime.now(dt.UTC)
        existing = await self.kube.get(API, "Lease", self.namespace, self.name)
        if existing is not None:
            spec = existing.get("spec") or {}
            holder = spec.get("holderIdentity")
            renewed = _parse(spec.get("renewTime"))
            duration = float(spec.get("leaseDurationSeconds") or self.seconds)
            free = not holder or renewed is None or (now - renewed).total_seconds() > duration
            if holder != self.identity and not free:
                return False
        body = self._body(existing, now)
        try:
            if existing is None:
                await self.kube.request("POST", resource_path(API, "Lease", self.namespace), body=body)
            else:
                await self.kube.request(
                    "PUT", resource_path(API, "Lease", self.namespace, self.name), body=body
                )
        except KubeError as exc:
            if exc.status in (409, 422):
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait (as a standby) until this replica holds the Lease."""
        while True:
            try:
                if await self.try_acquire():
                    log.info("leader: %s holds Lease %s/%s", self.identity, self.namespace, self.name)
                    self.on_change(True)
                    return
            except KubeError as exc:
                log.warning("cannot read or take the Lease: %s", exc)
            await asyncio.sleep(self.seconds / 3)

    async def keep(self) -> None:
        """Renew until it fails for longer than the lease allows, then raise LeaseLost. The margin
        (we give up at 2/3 of the duration) leaves the old leader stopped before a new one starts."""
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self.seconds / 5)
            try:
                if await self.try_acquire():
                    last_renewal = time.monotonic()
                    continue
                raise LeaseLost(f"another replica holds Lease {self.namespace}/{self.name}")
            except KubeError as exc:
                log.warning("cannot renew the Lease: %s", exc)
            except OSError as exc:
                log.warning("cannot renew the Lease: %s", type(exc).__name__)
            if time.monotonic() - last_renewal > self.seconds * 2 / 3:
                self.on_change(False)
                raise LeaseLost(f"Lease {self.namespace}/{self.name} not renewed in time")

    async def release(self) -> None:
        """Hand the Lease over at a clean exit so a standby takes over at once."""
        existing = await self.kube.get(API, "Lease", self.namespace, self.name)
        if existing is None or (existing.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        existing["spec"]["holderIdentity"] = None
        existing["spec"]["renewTime"] = None
        try:
            await self.kube.request(
                "PUT", resource_path(API, "Lease", self.namespace, self.name), body=existing
            )
        except KubeError as exc:
            log.warning("cannot release the Lease: %s", exc)
        self.on_change(False)
