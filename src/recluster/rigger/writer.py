"""What the rigger writes, leader only: EndpointSlices first (they move the traffic after a
failover), then the pod labels, then on a full pass the Services, the deletions of what belongs to
databases that are gone, and the secrets' `service_names`. It remembers what it last wrote, so an
unchanged object is not written again (except on a refresh pass)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from recluster.api.naming import service_names_patch
from recluster.clients.kubernetes import Kube, KubeError
from recluster.rigger.observe import SLICE_API, ClusterReader, RiggerConfig
from recluster.rigger.plan import Plan, slice_matches

log = logging.getLogger(__name__)

WRITERS = 8  # EndpointSlice writes at a time: after a node loss dozens change at once


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def _text(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


class Writer:
    def __init__(self, config: RiggerConfig, kube: Kube, reader: ClusterReader) -> None:
        self.config = config
        self.kube = kube
        self.reader = reader
        self.applied: dict[str, str] = {}  # "<kind>/<name>" -> what was last written
        # just took the Lease over: read the slices the previous leader wrote before writing any
        self.slices_unknown = True

    def forget(self) -> None:
        """What another replica wrote is not known: apply everything once."""
        self.applied.clear()
        self.slices_unknown = True

    async def act(self, todo: Plan, *, fast: bool, refresh: bool) -> None:
        """EndpointSlices first, then the pod labels; on a full pass also the Services, deletions
        and secret names. `fast` (after a Sentinel announcement): slices and labels only."""
        if self.slices_unknown:
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
        changed = [s for s in slices if refresh or self.applied.get(_key(s)) != _text(s)]
        semaphore = asyncio.Semaphore(WRITERS)

        async def write(endpoint_slice: dict[str, Any]) -> None:
            async with semaphore:
                await self.kube.apply(endpoint_slice)
            key, text = _key(endpoint_slice), _text(endpoint_slice)
            if self.applied.get(key) != text:
                endpoint = endpoint_slice["endpoints"][0]
                log.info("%s -> %s (%s)", key, endpoint["targetRef"]["name"], endpoint["addresses"][0])
            self.applied[key] = text

        results = await asyncio.gather(*(write(s) for s in changed), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def observe_slices(self, wanted: list[dict[str, Any]]) -> None:
        """On taking the Lease over: count the slices that already say what is wanted as written,
        so that the first writes after a takeover (often during a node loss, when dozens of masters
        move) are only the ones that changed, not every slice again. A failed read writes them all."""
        try:
            items = await self.reader.own_slices()
        except KubeError as exc:
            log.info("cannot read the EndpointSlices before writing them (%s): writing all", exc)
            return
        finally:
            self.slices_unknown = False
        existing = {item["metadata"]["name"]: item for item in items}
        for endpoint_slice in wanted:
            have = existing.get(endpoint_slice["metadata"]["name"])
            if have is not None and slice_matches(have, endpoint_slice):
                self.applied.setdefault(_key(endpoint_slice), _text(endpoint_slice))

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
            if not refresh and self.applied.get(key) == text:
                continue
            await self.kube.apply(service)
            self.applied[key] = text

    async def delete_gone(self, todo: Plan) -> None:
        """The Services of databases that are gone, and their slices."""
        for name in todo.delete_services:
            await self.kube.delete("v1", "Service", self.config.namespace, name)
            self.applied.pop(_key({"kind": "Service", "metadata": {"name": name}}), None)
            log.info("deleted Service %s (its database is gone)", name)
        for name in todo.delete_slices:
            if await self.kube.delete(SLICE_API, "EndpointSlice", self.config.namespace, name):
                log.info("deleted EndpointSlice %s (its database is gone)", name)
            self.applied.pop(_key({"kind": "EndpointSlice", "metadata": {"name": name}}), None)

    async def patch_secrets(self, secret_names: dict[str, list[str]], *, refresh: bool) -> None:
        for secret, names in secret_names.items():
            key, text = _key({"kind": "Secret", "metadata": {"name": secret}}), ",".join(names)
            if not refresh and self.applied.get(key) == text:
                continue
            try:
                await self.kube.merge_patch(
                    "v1", "Secret", self.config.namespace, secret, service_names_patch(names)
                )
                self.applied[key] = text
            except KubeError as exc:  # not created yet (the operator makes it): next pass
                log.debug("secret %s: %s", secret, exc)

    async def remove_leftovers(self, foreign_slices: list[str]) -> int:
        """What kube-controller-manager made for the rigger's Services while they had a selector,
        which it leaves once the selector is gone: its EndpointSlices, and the legacy Endpoints,
        which its EndpointSliceMirroring controller would mirror into one more slice pointing at a
        stale master (deleting them also makes it delete that mirror). How many were deleted."""
        deleted = 0
        for name in await self.reader.service_endpoints():  # first: stops the mirroring
            if await self.kube.delete("v1", "Endpoints", self.config.namespace, name):
                deleted += 1
                log.info("deleted Endpoints %s (left from when its Service had a selector)", name)
        for name in foreign_slices:
            if await self.kube.delete(SLICE_API, "EndpointSlice", self.config.namespace, name):
                deleted += 1
                log.info("deleted EndpointSlice %s (kube-controller-manager's)", name)
        return deleted
