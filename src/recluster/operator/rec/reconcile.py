"""One level-based reconcile of a REC: read everything, compare with the spec, take the next step.

Order: the contract finalizer (a REC being deleted is torn down: rec/delete.py) -> validate (an
invalid spec touches nothing else) -> secrets (generated only when missing) -> observe the node pods
and the cluster through its REST API -> apply every child with server-side apply (drift repair),
the StatefulSet's replicas decided once (rec/steps.py scale_step) -> one step of the cluster's life
(rec/steps.py) -> status and events (operator/status.py). Returns how soon to look again."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import httpx

from recluster.api.quantity import format_bytes
from recluster.api.rec import API_VERSION, FINALIZER, KIND, RedisEnterpriseCluster
from recluster.api.validation import SpecInvalid, check_rec, describe, rec_warnings
from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import Kube, KubeError, secret_value
from recluster.operator import metrics
from recluster.operator.accepted import accepted_body, remember_accepted
from recluster.operator.context import Context
from recluster.operator.finalizers import hold
from recluster.operator.rec.access import keep_access
from recluster.operator.rec.cluster import ClusterClient, ClusterView, Credentials, node_pods, policy_changes
from recluster.operator.rec.delete import delete_step
from recluster.operator.rec.status import INVALID_FIELDS, state_changes, valid_status
from recluster.operator.rec.steps import cluster_step, scale_step
from recluster.operator.rec.user_certificates import keep_certificates
from recluster.operator.rec.volumes import grow_claims
from recluster.operator.specs import TlsMaterial, build_rec_children
from recluster.operator.specs.names import (
    broker_auth_secret_name,
    broker_name,
    broker_tls_names,
    broker_tls_secret_name,
    cluster_fqdn,
    credentials_secret_name,
    node_selector_labels,
    statefulset_name,
    tls_names,
    tls_secret_name,
)
from recluster.operator.specs.statefulset import statefulset_immutable_changes
from recluster.operator.status import post_event, report_invalid, write_status
from recluster.operator.tls import issue_server_certificate

log = logging.getLogger(__name__)

PASSWORD_BYTES = 32  # token_urlsafe(32): 43 characters
ADMISSION_REFUSALS = (400, 422)


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
    return secret_value(secret, key) or ""


async def reconcile_rec(ctx: Context, namespace: str, name: str) -> float | None:
    """One reconcile; the seconds until the next one (sooner while the cluster converges), None
    once the REC is gone (or its deletion is done)."""
    kube, settings = ctx.kube, ctx.settings
    body = await kube.get(API_VERSION, KIND, namespace, name)
    if body is None:
        ctx.clusters.forget(namespace, name)
        return None
    if body["metadata"].get("deletionTimestamp"):
        return await delete_step(kube, body)
    refused: KubeError | None = None
    try:
        body = await hold(kube, body, FINALIZER)
    except KubeError as exc:
        if exc.status not in ADMISSION_REFUSALS:
            raise
        refused = exc  # the webhook refuses any update of a stored spec it finds invalid
    accepted = accepted_body(body)
    try:
        rec = check_rec(body, accepted)
    except SpecInvalid as invalid:
        await report_invalid(kube, body, describe(invalid.errors), state_changes, INVALID_FIELDS)
        return settings.resync_seconds
    if refused is not None:
        raise refused

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
    broker_password, broker_tls = await _broker_secrets(kube, rec, settings.cluster_domain)

    pods = node_pods(rec, await kube.list("v1", "Pod", namespace, _selector(node_selector_labels(rec))))
    client = await ctx.clusters.connect(rec, ca_pem, credentials, settings.cluster_domain)
    ctx.clusters.pods_listed(client, pods)
    view = await client.observe(pods) if ca_pem and credentials else ClusterView(pods=pods, nodes=[])
    statefulset = await kube.get("apps/v1", "StatefulSet", namespace, statefulset_name(rec))
    replicas, scale_note = await scale_step(rec, statefulset, view, client)

    children = build_rec_children(
        rec,
        image=settings.image,
        pull_policy=settings.image_pull_policy,
        password_secret_exists=creds_secret is not None,
        tls_secret_exists=tls_secret is not None,
        password=password,
        tls=tls,
        replicas=replicas,
        cluster_domain=settings.cluster_domain,
        log_format=settings.pods_log_format,
        broker_password=broker_password,
        broker_tls=broker_tls,
    )
    for child in children:
        if (
            child["kind"] == "StatefulSet"
            and statefulset is not None
            and statefulset_immutable_changes(child, statefulset)
        ):
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

    license_text = credentials.license if credentials else ""
    observed = await cluster_step(kube, rec, body, view, client, statefulset, scale_note, license_text)
    await _keep_policy(kube, body, rec, view, client)
    managed = await keep_access(kube, body, rec, view, client)
    own_certificate = tls.certificate_pem if tls else _secret_value(tls_secret, "tls.crt")
    certificates = await keep_certificates(kube, body, rec, view, client, own_certificate or "")
    status = valid_status(body, observed, describe(rec_warnings(body, accepted)))
    if managed is not None:
        status["managed"] = managed
    if certificates is not None:
        status["certificatesStatus"] = certificates
    await write_status(kube, body, status, state_changes)
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


async def _broker_secrets(
    kube: Kube, rec: RedisEnterpriseCluster, cluster_domain: str
) -> tuple[str | None, TlsMaterial | None]:
    """With the broker enabled: a password and a certificate for the broker's Secrets that do not
    exist yet (made once, never rewritten: a Secret made by the user is honoured); None for one
    that exists."""
    broker = rec.spec.service_broker_spec
    if broker is None or not broker.enabled:
        return None, None
    auth = await kube.get("v1", "Secret", rec.namespace, broker_auth_secret_name(rec))
    tls = await kube.get("v1", "Secret", rec.namespace, broker_tls_secret_name(rec))
    names = broker_tls_names(rec, cluster_domain)
    return (
        None if auth else secrets.token_urlsafe(PASSWORD_BYTES),
        None if tls else issue_server_certificate(names[0], names),
    )


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
