"""The last spec the operator accepted, kept in an annotation of the REC or REDB itself (nothing is
remembered between reconciles): the validator's `old`, for the rules about changes and so that a
refused value accepted before (by an older operator) is kept rather than refused on every pass."""

from __future__ import annotations

import json
from typing import Any

from recluster.clients.kubernetes import Kube
from recluster.operator.startup import ANNOTATION_PREFIX

ACCEPTED_SPEC_ANNOTATION = f"{ANNOTATION_PREFIX}/last-accepted-spec"


def accepted_body(body: dict[str, Any]) -> dict[str, Any] | None:
    """The last spec the operator accepted, as a body (None: never accepted, or unreadable)."""
    raw = (body["metadata"].get("annotations") or {}).get(ACCEPTED_SPEC_ANNOTATION)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except ValueError:
        return None
    return {**body, "spec": spec}


async def remember_accepted(kube: Kube, body: dict[str, Any]) -> None:
    """Record the body's spec as accepted (a merge patch of the annotation, only when it changed)."""
    spec_json = json.dumps(body.get("spec") or {}, sort_keys=True, separators=(",", ":"))
    meta = body["metadata"]
    if (meta.get("annotations") or {}).get(ACCEPTED_SPEC_ANNOTATION) == spec_json:
        return
    await kube.merge_patch(
        body["apiVersion"],
        body["kind"],
        meta["namespace"],
        meta["name"],
        {"metadata": {"annotations": {ACCEPTED_SPEC_ANNOTATION: spec_json}}},
    )
