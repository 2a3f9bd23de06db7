"""Status, events and conditions of both kinds (REC and REDB): one merge-patch of `status` per
reconcile when something changed, the events the change calls for (each kind says which, as a pure
function of the old and the new status), a warning per new spec problem, and `report_invalid` for a
spec the validator refuses (specStatus Invalid; nothing else is touched)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from recluster.api.conditions import invalid_spec_status, spec_event
from recluster.clients.kubernetes import Kube, KubeError

log = logging.getLogger(__name__)

COMPONENT = "redis-enterprise-operator"

# (old status, new status) -> the (reason, message) of each Normal event the change deserves
StatusEvents = Callable[[dict[str, Any], dict[str, Any]], list[tuple[str, str]]]


def no_events(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    return []


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unchanged(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Equal apart from what the new status leaves out (condition timestamps that would not move
    anyway are kept by `updated_conditions`)."""
    return all(old.get(key) == value for key, value in new.items())


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch of `new`: a merge patch merges maps, so a key gone from one of the new
    status's maps, at any depth, is removed explicitly (certificatesStatus.api.message once the
    Secret is fixed)."""
    patch = dict(new)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            patch[key] = {**{k: None for k in old[key] if k not in value}, **status_patch(old[key], value)}
    return patch


async def post_event(kube: Kube, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    try:
        await kube.post_event(body, type_=type_, reason=reason, message=message, component=COMPONENT)
    except KubeError as exc:
        log.warning("cannot post event %s: %s", reason, exc)


async def write_status(
    kube: Kube, body: dict[str, Any], status: dict[str, Any], events: StatusEvents = no_events
) -> None:
    """Patch the object's status when it changed, and post the events the change calls for."""
    old = body.get("status") or {}
    if unchanged(old, status):
        return
    meta = body["metadata"]
    await kube.merge_patch(
        body["apiVersion"],
        body["kind"],
        meta["namespace"],
        meta["name"],
        {"status": status_patch(old, status)},
        subresource="status",
    )
    for reason, message in events(old, status):
        await post_event(kube, body, "Normal", reason, message)
    warning = spec_event(old, status)
    if warning is not None:
        await post_event(kube, body, "Warning", *warning)


async def report_invalid(
    kube: Kube,
    body: dict[str, Any],
    message: str,
    events: StatusEvents = no_events,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """specStatus Invalid (with the kind's own `fields`, e.g. the REC's state) and one warning naming
    the spec's problems; everything the cluster said before is kept."""
    status = {**(fields or {}), **invalid_spec_status(body, message, now_rfc3339())}
    await write_status(kube, body, status, events)
