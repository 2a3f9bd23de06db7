"""The steps of a REC's cluster life, one per reconcile, through the cluster's REST API: scale
(remove a node before its pod goes), create the cluster on the first pod, join the others, wait for
a majority, restart one outdated pod at a time, reset for `clusterRecovery`. Nothing is remembered
between steps: the next reconcile reads where the cluster is."""

from __future__ import annotations

import logging
from typing import Any

from recluster.api.quorum import majority
from recluster.api.rec import API_VERSION, KIND, ClusterState, RedisEnterpriseCluster
from recluster.clients.kubernetes import Kube
from recluster.operator.rec.cluster import (
    CREATING,
    FAILED,
    IDLE,
    OTHER_CLUSTER,
    ClusterClient,
    ClusterView,
    NodePod,
)
from recluster.operator.rec.status import Observed
from recluster.operator.specs.names import VOLUME_CLAIM_TEMPLATE, credentials_secret_name
from recluster.operator.specs.statefulset import statefulset_replicas
from recluster.operator.status import post_event

log = logging.getLogger(__name__)


async def scale_step(
    rec: RedisEnterpriseCluster, statefulset: dict[str, Any] | None, view: ClusterView, client: ClusterClient
) -> tuple[int, str]:
    """The StatefulSet's replicas for this pass (statefulset_replicas) and a note for the status,
    after the REST calls a scale needs: a member whose pod is gone (a node that rejoined while its
    pod was scaled away) is removed; shrinking, the node in the highest pod is removed from the
    cluster before its pod goes, one pod at a time."""
    desired = rec.spec.nodes
    current = int((statefulset or {}).get("spec", {}).get("replicas") or 0) or None
    if current is None or desired >= current:
        orphans = client.orphaned_nodes(view, current or desired)
        via = next((m for m in view.members if m.ready and not m.deleting), None)
        note = ""
        if orphans and via is not None:
            for orphan in orphans:
                action = await client.start_remove(via, orphan)
                log.warning("removing node %d from cluster %s/%s: its pod is gone (action %s)", orphan,
                            rec.namespace, rec.name, action)
            note = f"removing node(s) {', '.join(map(str, orphans))} whose pods are gone"
        return statefulset_replicas(desired, current, top_node_gone=False), note
    top = view.pod(current - 1)
    uid = client.node_uid(view, top) if top is not None else None
    in_cluster = uid is not None and any(int(n["uid"]) == uid for n in view.nodes)
    replicas = statefulset_replicas(desired, current, top_node_gone=not in_cluster)
    if not in_cluster:
        return replicas, f"scaling down to {desired} nodes"
    via = next((m for m in view.members if m.ordinal != current - 1), None)
    if via is None or uid is None:
        return replicas, "scaling down: no other node answers"
    action = await client.start_remove(via, uid)
    log.info("removing node %d (pod %s) from cluster %s/%s: action %s", uid, top.name if top else "?",
             rec.namespace, rec.name, action)
    return replicas, f"scaling down: removing node {uid} from the cluster"


# States in which the cluster has existed: losing every node then means recovery, not bootstrap.
STARTED = {
    ClusterState.RUNNING.value,
    ClusterState.RUNNING_ROLLING_UPDATE.value,
    ClusterState.RECOVERY_RESET.value,
    ClusterState.RECOVERING_FIRST_POD.value,
}


async def cluster_step(
    kube: Kube,
    rec: RedisEnterpriseCluster,
    body: dict[str, Any],
    view: ClusterView,
    client: ClusterClient,
    statefulset: dict[str, Any] | None,
    scale_note: str,
    license_text: str,
) -> Observed:
    """One step of the cluster's life (create, join, wait for a majority, restart one outdated pod),
    and what it makes of the cluster."""
    previous = (body.get("status") or {}).get("state")
    started = previous in STARTED
    desired = rec.spec.nodes
    pods = [p for p in view.pods if not p.deleting]
    ready_members = [p for p in view.members if p.ready and not p.deleting]

    def observed(state: ClusterState, message: str, converging: bool = True) -> Observed:
        return Observed(state, message, len(ready_members), desired, view.version, converging,
                        view.bundled_versions)

    if rec.spec.cluster_recovery:
        return await _recovery_reset(kube, rec, body, view, observed)

    # A node whose bootstrap failed starts over: its pod restarts with nothing on its data volume
    # to resume from (membership is saved only once a bootstrap succeeded).
    for pod in [p for p in pods if p.bootstrap == FAILED]:
        await post_event(
            kube, body, "Warning", "BootstrapFailed", f"bootstrap failed on {pod.name}; restarting it"
        )
        await kube.delete("v1", "Pod", rec.namespace, pod.name)

    foreign = [p.name for p in pods if p.bootstrap == OTHER_CLUSTER]
    if foreign and not view.members:
        # made again over the volumes of an earlier REC of this name (its PVCs are kept on deletion):
        # the nodes hold that cluster and refuse the new Secret's password; nothing here can fix it.
        # The advice names every node pod's claim, not only those that have answered yet: the pods
        # start in parallel, the earlier REC's volumes are all of them, and with no member of a
        # cluster of these credentials none holds data of this REC.
        claims = ", ".join(f"{VOLUME_CLAIM_TEMPLATE}-{name}" for name in sorted({p.name for p in pods}))
        message = (
            f"node pods {', '.join(foreign)} hold a cluster whose credentials are not those of Secret "
            f"{credentials_secret_name(rec)} (a REC made again over the volumes of an earlier one?): put "
            f"that cluster's username and password back in the Secret, or delete the PVCs {claims}"
        )
        if previous != ClusterState.ERROR:
            await post_event(kube, body, "Warning", "OtherCluster", message)
        return observed(ClusterState.ERROR, message, converging=False)

    if not view.members:
        if any(p.bootstrap == CREATING for p in pods):
            return observed(ClusterState.BOOTSTRAPPING_FIRST_POD, "creating the cluster on the first pod")
        idle = [p for p in pods if p.bootstrap == IDLE]
        if idle:
            # No node remembers a cluster: a first bootstrap, or (after Running) every node lost
            # its data, and the cluster can only be made anew.
            state = ClusterState.CLUSTER_RECREATING if started else ClusterState.BOOTSTRAPPING_FIRST_POD
            if started:
                await post_event(
                    kube,
                    body,
                    "Warning",
                    "ClusterRecreating",
                    "no node holds the cluster's configuration any more; creating it anew",
                )
            await client.create_cluster(idle[0], license_text)
            log.info("cluster %s/%s: create_cluster on %s", rec.namespace, rec.name, idle[0].name)
            return observed(state, f"creating the cluster on {idle[0].name}")
        if started:
            return observed(ClusterState.RECOVERING_FIRST_POD, "waiting for the node pods to come back")
        return observed(ClusterState.PENDING_CREATION, "waiting for the first node pod")

    if ready_members:  # joins go to nodes that answer for the cluster
        for pod in pods:
            # a pod above the desired count is on its way out: its node was just removed (and is
            # idle again); joining it would leave a member behind once its pod goes
            if pod.bootstrap == IDLE and pod.ip and pod.ordinal < desired:
                await client.join_cluster(pod, ready_members)
                log.info("cluster %s/%s: %s joins", rec.namespace, rec.name, pod.name)

    in_cluster = len(view.nodes) if view.nodes else len(view.members)
    # Healthy: every node ready and in the cluster, every shard in sync. A pod restarts only then.
    healthy = len(ready_members) >= desired and in_cluster == desired and view.shards_in_sync
    if not started and not ready_members:
        return observed(ClusterState.BOOTSTRAPPING_FIRST_POD, "waiting for the first node to be ready")
    if not started and not healthy:
        return observed(ClusterState.INITIALIZING, f"{len(ready_members)} of {desired} nodes ready")
    if started and len(ready_members) < majority(desired):
        # the nodes resume their membership from their volumes and re-form the cluster themselves
        return observed(
            ClusterState.RECOVERING_FIRST_POD,
            f"{len(ready_members)} of {desired} nodes ready: waiting for a majority",
        )

    outdated = outdated_pods(pods, statefulset)
    if outdated:
        if healthy:
            victim = next_to_restart(outdated, view, client)
            log.info(
                "cluster %s/%s: restarting %s for the new pod template", rec.namespace, rec.name, victim.name
            )
            await kube.delete("v1", "Pod", rec.namespace, victim.name)
        return observed(
            ClusterState.RUNNING_ROLLING_UPDATE, f"{len(outdated)} node pods to update, one at a time"
        )
    if not healthy:
        note = scale_note or f"{len(ready_members)} of {desired} nodes ready, {in_cluster} in the cluster"
        return observed(ClusterState.RUNNING, note)
    return observed(ClusterState.RUNNING, f"{desired} nodes ready", converging=bool(scale_note))


async def _recovery_reset(
    kube: Kube, rec: RedisEnterpriseCluster, body: dict[str, Any], view: ClusterView, observed: Any
) -> Observed:
    """`clusterRecovery: true`: restart every node pod at once so that the nodes resume the cluster
    from their volumes together, then clear the field (as the original operator does)."""
    for pod in view.pods:
        if not pod.deleting:
            await kube.delete("v1", "Pod", rec.namespace, pod.name)
    await kube.merge_patch(API_VERSION, KIND, rec.namespace, rec.name, {"spec": {"clusterRecovery": None}})
    await post_event(
        kube, body, "Normal", "ClusterRecovery", "restarting every node pod to recover the cluster"
    )
    result: Observed = observed(ClusterState.RECOVERY_RESET, "restarting every node pod")
    return result


def outdated_pods(pods: list[NodePod], statefulset: dict[str, Any] | None) -> list[NodePod]:
    revision = ((statefulset or {}).get("status") or {}).get("updateRevision")
    if not revision:
        return []
    return [p for p in pods if p.revision and p.revision != revision]


def next_to_restart(outdated: list[NodePod], view: ClusterView, client: ClusterClient) -> NodePod:
    """Highest ordinal first, the node that leads the cluster (CCS master) last."""
    leaders = {n.get("name") for n in view.nodes if n.get("role") == "master"}
    return sorted(outdated, key=lambda p: (client.server_name(p) in leaders, -p.ordinal))[0]
