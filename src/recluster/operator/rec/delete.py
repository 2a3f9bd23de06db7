"""Deletion of a REC: the contract finalizer (operator/finalizers.py) holds the REC while the node
pods stop in order (each node hands its masters over on SIGTERM); the garbage collector then removes
the children by their owner references, and the node PVCs stay (retention policy Retain)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from recluster.api.rec import FINALIZER, ClusterState
from recluster.clients.kubernetes import Kube
from recluster.operator.finalizers import held, release
from recluster.operator.rec.status import state_changes
from recluster.operator.specs.names import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL
from recluster.operator.status import write_status

# How long the node pods may take to stop in order (each hands its masters over) before the rest
# are stopped at once.
STOP_GRACE_SECONDS = 90.0
STOPPING_RECHECK_S = 3.0


async def delete_step(kube: Kube, body: dict[str, Any]) -> float | None:
    """One step of a REC's deletion: how soon to look again, None once the finalizer is released
    (or was not ours to release)."""
    if not held(body, FINALIZER):
        return None
    remaining = await tear_down(kube, body)
    if remaining:
        return STOPPING_RECHECK_S
    meta = body["metadata"]
    current = await kube.get(body["apiVersion"], body["kind"], meta["namespace"], meta["name"])
    if current is not None:  # read again: tear_down's status write moved its resourceVersion
        await release(kube, current, FINALIZER)
    return None


async def tear_down(kube: Kube, body: dict[str, Any]) -> int:
    """One step of tearing the cluster down; the number of node pods still running (0: done)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = dict(body.get("status") or {})
    if status.get("state") != ClusterState.DELETING.value:
        await write_status(kube, body, {"state": ClusterState.DELETING.value}, state_changes)
    statefulset = await kube.get("apps/v1", "StatefulSet", namespace, name)
    if statefulset is not None and statefulset["spec"].get("replicas"):
        await kube.merge_patch("apps/v1", "StatefulSet", namespace, name, {"spec": {"replicas": 0}})
    selector = f"{APP_LABEL}={APP},{CLUSTER_LABEL}={name},{ROLE_LABEL}={NODE_ROLE}"
    pods = await kube.list("v1", "Pod", namespace, selector)
    if pods and _deleting_for(body) > STOP_GRACE_SECONDS:
        # A node that does not stop within the grace (its cluster is going anyway) must not hold
        # the REC for the pods' full termination grace period: stop it now. Its PVC stays.
        for pod in pods:
            await kube.delete("v1", "Pod", namespace, pod["metadata"]["name"], grace_period_seconds=0)
    return len(pods)


def _deleting_for(body: dict[str, Any]) -> float:
    stamp = body["metadata"].get("deletionTimestamp")
    if not stamp:
        return 0.0
    since = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - since).total_seconds()
