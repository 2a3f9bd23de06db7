"""Metadata shared by every object of a REC: namespace, labels, the owner reference."""

from __future__ import annotations

from typing import Any

from recluster.api.rec import RedisEnterpriseCluster
from recluster.operator.specs.names import object_labels


def owner_reference(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    """The REC as controller: the garbage collector deletes the object with the REC, and
    blockOwnerDeletion keeps the REC until its children are gone (foreground deletion)."""
    return {
        "apiVersion": rec.api_version,
        "kind": rec.kind,
        "name": rec.name,
        "uid": rec.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(
    rec: RedisEnterpriseCluster,
    name: str,
    *,
    role: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": rec.namespace,
        "labels": {**object_labels(rec, role), **(labels or {})},
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    meta["ownerReferences"] = [owner_reference(rec)]
    return meta
