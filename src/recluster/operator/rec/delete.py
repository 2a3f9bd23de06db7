"""Deletion of a REC: the finalizer holds the REC while the node pods stop in order (each node hands
its masters over on SIGTERM); the garbage collector then removes the children by their owner
references, and the node PVCs stay (retention policy Retain)."""

from __future__ import annotations

from typing import Any

from recluster.api.rec import ClusterState
from recluster.clients.kubernetes import Kube
from recluster.operator.build.names import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL
from recluster.operator.rec.status import REC_API, REC_KIND, write_status


async def tear_down(kube: Kube, body: dict[str, Any]) -> int:
    """One step of tearing the cluster down; the number of node pods still running (0: done)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = dict(body.get("status") or {})
    if status.get("state") != ClusterState.DELETING.value:
        await write_status(kube, body, {"state": ClusterState.DELETING.value})
    statefulset = await kube.get("apps/v1", "StatefulSet", namespace, name)
    if statefulset is not None and statefulset["spec"].get("replicas"):
        await kube.merge_patch("apps/v1", "StatefulSet", namespace, name, {"spec": {"replicas": 0}})
    selector = f"{APP_LABEL}={APP},{CLUSTER_LABEL}={name},{ROLE_LABEL}={NODE_ROLE}"
    pods = await kube.list("v1", "Pod", namespace, selector)
    return len(pods) if statefulset is not None else 0


__all__ = ["REC_API", "REC_KIND", "tear_down"]
