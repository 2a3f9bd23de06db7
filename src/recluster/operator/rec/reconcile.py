"""One level-based reconcile of a REC: read everything, compare with the spec, take the next step.

Order: validate (an invalid spec touches nothing) -> secrets (generated only when missing) ->
observe the node pods and the cluster through its REST API -> apply every child with server-side
apply (drift repair) -> one step of the cluster's life (create, join, remove a node, restart one
outdated pod) -> status and events. Returns how soon to look again."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from typing import Any

import httpx

from recluster.api.quantity import format_bytes
from recluster.api.rec import ClusterState, RedisEnterpriseCluster
from recluster.api.validation import SpecInvalid, check_rec, describe, rec_warnings
from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import Kube, KubeError
from recluster.operator import metrics
from recluster.operator.accepted import accepted_body, remember_accepted
from recluster.operator.rec.cluster import (
    CREATING,
    FAILED,
    IDLE,
    OTHER_CLUSTER,
    ClusterClient,
    ClusterView,
    Credentials,
    NodePod,
    node_pods,
    policy_changes,
)
from recluster.operator.rec.status import (
    REC_API,
    REC_KIND,
    Observed,
    post_event,
    report_invalid,
    valid_status,
    write_status,
)
from recluster.operator.rec.volumes import grow_claims
from recluster.operator.specs import build_rec_children
from recluster.operator.specs.names import (
    VOLUME_CLAIM_TEMPLATE,
    broker_name,
    cluster_fqdn,
    credentials_secret_name,
    node_selector_labels,
    statefulset_name,
    tls_names,
    tls_secret_name,
)
from recluster.operator.specs.statefulset import statefulset_immutable_changes
from recluster.operator.startup import Runtime
from recluster.operator.tls import issue_server_certificate

log = logging.getLogger(__name__)

PASSWORD_BYTES = 32  # token_urlsafe(32): 43 characters


ORPHAN_DELETE_WAIT_S = 30.0


async def _wait_deleted(kube: Kube, obj: dict[str, Any]) -> None:
    """Until `obj` is gone: an orphaning delete finishes only when the garbage collector has
    released the dependents, and an apply before that would patch the old object (refused)."""
    meta = obj["metadata"]
    deadline = asyncio.get_running_loop().time() + ORPHAN_DELETE_WAIT_S
    while True:
        current = await kube.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{obj['kind']} {meta['name']} is still being deleted after "
                               f"{ORPHAN_DELETE_WAIT_S:.0f}s")
        await asyncio.sleep(0.5)


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _secret_value(secret: dict[str, Any] | None, key: str) -> str:
    data = (secret or {}).get("data") or {}
    return base64.b64decode(data[key]).decode() if key in data else ""


async def reconcile_rec(rt: Runtime, namespace: str, name: str) -> float:
    """One reconcile; the seconds until the next one (sooner while the cluster converges)."""
    kube, settings = rt.kube, rt.settings
    body = await kube.get(REC_API, REC_KIND, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return settings.resync_seconds
    accepted = accepted_body(body)
    try:
        rec = check_rec(body, accepted)
    except SpecInvalid as invalid:
        await report_invalid(kube, body, describe(invalid.errors))
        return settings.resync_seconds

    # Secrets: generated once, never rewritten (a pre-created credentials Secret is honoured).
    creds_secret = await kube.get("v1", "Secret", namespace, credentials_secret_name(rec))
    tls_secret = await kube.get("v1", "Secret", namespace, tls_secret_name(rec))
    password = None if creds_secret else secrets.token_urlsafe(PASSWORD_BYTES)
    tls = None
    if tls_secret is None:
        tls = issue_server_certificate(
            cluster_fqdn(rec, settings.cluster_domain), tls_names(rec, settings.cluster_domain)
        )
    ca_pem = tls.ca_certificate_pem if tls else _secret_value(tls_secret, "ca.crt")
    credentials = await _credentials(kube, rec, creds_secret, password)

    pods = node_pods(rec, await kube.list("v1", "Pod", namespace, _selector(node_selector_labels(rec))))
    client = ClusterClient(rec, ca_pem, credentials, settings.cluster_domain)
    view = await client.observe(pods) if ca_pem and credentials else ClusterView(pods=pods, nodes=[])
    statefulset = await kube.get("apps/v1", "StatefulSet", namespace, statefulset_name(rec))
    replicas, scale_note = await _replicas(rec, statefulset, view, client)

    children = build_rec_children(
        rec,
        image=settings.image,
        password_secret_exists=creds_secret is not None,
        tls_secret_exists=tls_secret is not None,
        password=password,
        tls=tls,
        cluster_domain=settings.cluster_domain,
    )
    for child in children:
        if child["kind"] == "StatefulSet":
            child["spec"]["replicas"] = replicas
            if statefulset is not None and statefulset_immutable_changes(child, statefulset):
                # Fields an apply cannot change: recreate the StatefulSet, keeping its pods (Orphan).
                await kube.delete("apps/v1", "StatefulSet", namespace, child["metadata"]["name"], "Orphan")
                await _wait_deleted(kube, statefulset)
        await kube.apply(child)
        metrics.APPLIES.labels(child["kind"]).inc()
    await _remove_broker_when_disabled(kube, rec)
    grown = await grow_claims(kube, rec)
    if grown:
        size = format_bytes(rec.spec.volume_size_bytes())
        await post_event(kube, body, "Normal", "VolumeResize", f"growing {', '.join(grown)} to {size}")
    await remember_accepted(kube, body)

    observed = await _cluster_step(kube, rec, body, view, client, statefulset, scale_note)
    await _keep_policy(kube, body, rec, view, client)
    await write_status(kube, body, valid_status(body, observed, describe(rec_warnings(body, accepted))))
    metrics.REC_READY_NODES.labels(namespace, name).set(observed.ready_nodes)
    return settings.busy_resync_seconds if observed.converging else settings.resync_seconds


async def _keep_policy(
    kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, view: ClusterView, client: ClusterClient
) -> None:
    """The cluster policy follows the spec (slaveHA); a change made through the REST API is undone."""
    changes = policy_changes(rec, view.policy) if view.policy is not None else {}
    via = next((m for m in view.members if m.ready and not m.deleting), None)
    if not changes or via is None:
        return
    try:
        await client.put_policy(via, changes)
    except (httpx.HTTPError, ClusterApiError, OSError) as exc:  # no majority, a node restarting: next time
        log.warning("cluster %s/%s: cannot set the cluster policy: %s", rec.namespace, rec.name, exc)
        return
    settings = ", ".join(f"{key}={value}" for key, value in sorted(changes.items()))
    await post_event(kube, body, "Normal", "ClusterPolicy", f"cluster policy set: {settings}")


async def _credentials(
    kube: Kube, rec: RedisEnterpriseCluster, creds_secret: dict[str, Any] | None, new_password: str | None
) -> Credentials | None:
    license_text = rec.spec.license or ""
    if rec.spec.license_secret_name:
        license_text = _secret_value(
            await kube.get("v1", "Secret", rec.namespace, rec.spec.license_secret_name), "license"
        )
    if creds_secret is None:
        return Credentials(rec.spec.username, new_password, license_text) if new_password else None
    username = _secret_value(creds_secret, "username") or rec.spec.username
    password = _secret_value(creds_secret, "password")
    return Credentials(username, password, license_text) if password else None


async def _remove_broker_when_disabled(kube: Kube, rec: RedisEnterpriseCluster) -> None:
    broker = rec.spec.service_broker_spec
    if broker is not None and broker.enabled:
        return
    name = broker_name(rec)
    for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service")):
        existing = await kube.get(api_version, kind, rec.namespace, name)
        if existing is not None and _owned_by(existing, rec):
            await kube.delete(api_version, kind, rec.namespace, name)


def _owned_by(obj: dict[str, Any], rec: RedisEnterpriseCluster) -> bool:
    return any(ref.get("uid") == rec.metadata.uid for ref in obj["metadata"].get("ownerReferences") or [])


async def _replicas(
    rec: RedisEnterpriseCluster, statefulset: dict[str, Any] | None, view: ClusterView, client: ClusterClient
) -> tuple[int, str]:
    """The StatefulSet's replicas for this pass. Growing: the spec. Shrinking: one pod at a time, and
    only once the node in the highest pod has been removed from the cluster through the API."""
    desired = rec.spec.nodes
    current = int((statefulset or {}).get("spec", {}).get("replicas") or desired)
    if desired >= current:
        orphans = client.orphaned_nodes(view, current)
        via = next((m for m in view.members if m.ready and not m.deleting), None)
        if orphans and via is not None:
            for orphan in orphans:
                action = await client.start_remove(via, orphan)
                log.warning("removing node %d from cluster %s/%s: its pod is gone (action %s)", orphan,
                            rec.namespace, rec.name, action)
            return desired, f"removing node(s) {', '.join(map(str, orphans))} whose pods are gone"
        return desired, ""
    top = view.pod(current - 1)
    uid = client.node_uid(view, top) if top is not None else None
    in_cluster = uid is not None and any(int(n["uid"]) == uid for n in view.nodes)
    if not in_cluster:
        return current - 1, f"scaling down to {desired} nodes"
    via = next((m for m in view.members if m.ordinal != current - 1), None)
    if via is None or uid is None:
        return current, "scaling down: no other node answers"
    action = await client.start_remove(via, uid)
    log.info(
        "removing node %d (pod %s) from cluster %s/%s: action %s",
        uid,
        top.name if top else "?",
        rec.namespace,
        rec.name,
        action,
    )
    return current, f"scaling down: removing node {uid} from the cluster"


# States in which the cluster has existed: losing every node then means recovery, not bootstrap.
STARTED = {
    ClusterState.RUNNING.value,
    ClusterState.RUNNING_ROLLING_UPDATE.value,
    ClusterState.RECOVERY_RESET.value,
    ClusterState.RECOVERING_FIRST_POD.value,
}


async def _cluster_step(
    kube: Kube,
    rec: RedisEnterpriseCluster,
    body: dict[str, Any],
    view: ClusterView,
    client: ClusterClient,
    statefulset: dict[str, Any] | None,
    scale_note: str,
) -> Observed:
    previous = (body.get("status") or {}).get("state")
    started = previous in STARTED
    desired = rec.spec.nodes
    pods = [p for p in view.pods if not p.deleting]
    ready_members = [p for p in view.members if p.ready and not p.deleting]

    def observed(state: ClusterState, message: str, converging: bool = True) -> Observed:
        return Observed(state, message, len(ready_members), desired, view.version, converging)

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
        # the nodes hold that cluster and refuse the new Secret's password; nothing here can fix it
        claims = ", ".join(f"{VOLUME_CLAIM_TEMPLATE}-{name}" for name in foreign)
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
            await client.create_cluster(idle[0])
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
    if started and len(ready_members) < desired // 2 + 1:
        # the nodes resume their membership from their volumes and re-form the cluster themselves
        return observed(
            ClusterState.RECOVERING_FIRST_POD,
            f"{len(ready_members)} of {desired} nodes ready: waiting for a majority",
        )

    outdated = _outdated(pods, statefulset)
    if outdated:
        if healthy:
            victim = _next_to_restart(outdated, view, client)
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
    await kube.merge_patch(REC_API, REC_KIND, rec.namespace, rec.name, {"spec": {"clusterRecovery": None}})
    await post_event(
        kube, body, "Normal", "ClusterRecovery", "restarting every node pod to recover the cluster"
    )
    result: Observed = observed(ClusterState.RECOVERY_RESET, "restarting every node pod")
    return result


def _outdated(pods: list[NodePod], statefulset: dict[str, Any] | None) -> list[NodePod]:
    revision = ((statefulset or {}).get("status") or {}).get("updateRevision")
    if not revision:
        return []
    return [p for p in pods if p.revision and p.revision != revision]


def _next_to_restart(outdated: list[NodePod], view: ClusterView, client: ClusterClient) -> NodePod:
    """Highest ordinal first, the node that leads the cluster (CCS master) last."""
    leaders = {n.get("name") for n in view.nodes if n.get("role") == "master"}
    return sorted(outdated, key=lambda p: (client.server_name(p) in leaders, -p.ordinal))[0]


__all__ = ["KubeError", "reconcile_rec"]
