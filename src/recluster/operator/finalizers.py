"""The one finalizer mechanism of both controllers: the reconciler holds its object with the
contract's finalizer (the REC's `redbfinalizer.redisenterpriseclusters...`, the REDB's
`finalizer.redisenterprisedatabases...`: the names users already know to strip when the operator is
gone) while it exists, and drops it once its deletion is done. kopf adds none of its own (no handler
asks it to), and its finalizer setting names one that no object carries, since kopf strips its own
finalizer from objects that no handler needs it for.

Each write carries the object's resourceVersion: a finalizer list read before someone else's change
is never written back over it (the conflict fails the reconcile, which reads again)."""

from __future__ import annotations

from typing import Any

from recluster.clients.kubernetes import Kube

# kopf's own finalizer name (operator-wide). None of our objects carries it; RECs made by an older
# operator carry the REC's contract finalizer, which kopf added for them: that is the one released
# here now. kopf's default marker, should an object carry it, is released along with ours.
KOPF_FINALIZER = "recluster.io/kopf-unused"
LEGACY_FINALIZERS = ("kopf.zalando.org/KopfFinalizerMarker",)


def finalizers_of(body: dict[str, Any]) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


async def _patch(kube: Kube, body: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
    meta = body["metadata"]
    patched: dict[str, Any] = await kube.merge_patch(
        body["apiVersion"],
        body["kind"],
        meta["namespace"],
        meta["name"],
        {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}},
    )
    return patched


async def hold(kube: Kube, body: dict[str, Any], finalizer: str) -> dict[str, Any]:
    """The object, holding `finalizer` (added when missing: the patched object is returned)."""
    finalizers = finalizers_of(body)
    if finalizer in finalizers:
        return body
    return await _patch(kube, body, [*finalizers, finalizer])


def held(body: dict[str, Any], finalizer: str) -> bool:
    """Whether the object still waits for us (our finalizer, or an older operator's, is on it)."""
    return any(name in (finalizer, *LEGACY_FINALIZERS) for name in finalizers_of(body))


async def release(kube: Kube, body: dict[str, Any], finalizer: str) -> None:
    """Drop `finalizer` (and a legacy kopf marker): the deletion is done."""
    finalizers = finalizers_of(body)
    kept = [name for name in finalizers if name not in (finalizer, *LEGACY_FINALIZERS)]
    if kept != finalizers:
        await _patch(kube, body, kept)
