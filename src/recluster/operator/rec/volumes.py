"""Growing the node volumes when `persistentSpec.volumeSize` grows (with
`enablePersistentVolumeResize`). A StatefulSet's claim template is immutable and only shapes new
claims, so the existing claims are patched one by one; the StorageClass's provisioner (or CSI
resizer) then grows the volumes. The reconciler recreates the StatefulSet (pods orphaned) so later
claims get the new size too. Shrinking is refused by the validator and never attempted here."""

from __future__ import annotations

from typing import Any

from recluster.api.quantity import format_bytes, quantity_bytes
from recluster.api.rec import RedisEnterpriseCluster
from recluster.clients.kubernetes import Kube
from recluster.operator.specs.names import node_selector_labels


def claims_to_grow(claims: list[dict[str, Any]], wanted_bytes: int) -> list[str]:
    """Names of the claims that ask for less than `wanted_bytes` (pure)."""
    names = []
    for claim in claims:
        requested = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        if claim["metadata"].get("deletionTimestamp") or requested is None:
            continue
        if quantity_bytes(requested) < wanted_bytes:
            names.append(claim["metadata"]["name"])
    return sorted(names)


async def grow_claims(kube: Kube, rec: RedisEnterpriseCluster) -> list[str]:
    """Patch every node claim of the REC up to the spec's volume size; the names patched."""
    persistent = rec.spec.persistent_spec
    resizable = persistent is not None and persistent.enable_persistent_volume_resize
    if not rec.spec.persistence_enabled or not resizable:
        return []
    selector = ",".join(f"{k}={v}" for k, v in node_selector_labels(rec).items())
    claims = await kube.list("v1", "PersistentVolumeClaim", rec.metadata.namespace, selector)
    wanted = rec.spec.volume_size_bytes()
    grown = claims_to_grow(claims, wanted)
    for name in grown:
        await kube.merge_patch("v1", "PersistentVolumeClaim", rec.metadata.namespace, name,
                               {"spec": {"resources": {"requests": {"storage": format_bytes(wanted)}}}})
    return grown
