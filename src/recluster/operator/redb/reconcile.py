"""One level-based reconcile of a REDB: read everything, compare with the spec, take the next step.

Order: finalizer -> find the cluster -> validate with the facts from the cluster (an invalid spec
touches nothing) -> database secret (password generated only when the secret is missing) -> create
or update the database through the REST API -> secret's port -> status and events. Deletion: delete
the database, wait until it is gone, delete the secret we made, drop the finalizer. Services are the
rigger's (it deletes those of a database that is gone; they are also owned by the REDB)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from recluster.api.conditions import spec_event
from recluster.api.naming import parse_service_types, service_names
from recluster.api.redb import FINALIZER, RedisEnterpriseDatabase
from recluster.api.validation import (
    SpecInvalid,
    check_redb,
    describe,
    parse_redb,
    plain,
    redb_warnings,
    validate_redb,
)
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.clients.kubernetes import Kube, KubeError
from recluster.operator.accepted import accepted_body, remember_accepted
from recluster.operator.redb.cluster import (
    ClusterUnreachable,
    DatabaseCluster,
    connect,
    find_rec,
    other_ports,
    rec_model,
)
from recluster.operator.redb.mapping import bdb_create_body, bdb_update_body, changed_fields
from recluster.operator.redb.secret import (
    REDB_API,
    REDB_KIND,
    build_new_secret,
    created_by_operator,
    port_patch,
    secret_value,
)
from recluster.operator.redb.status import DatabaseView, database_status, invalid_status, status_changes

log = logging.getLogger(__name__)

COMPONENT = "redis-enterprise-operator"
PASSWORD_BYTES = 24  # token_urlsafe(24): 32 characters
BUSY_SECONDS = 2.0


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def post_event(kube: Kube, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    try:
        await kube.post_event(body, type_=type_, reason=reason, message=message, component=COMPONENT)
    except KubeError as exc:
        log.warning("cannot post event %s: %s", reason, exc)


async def write_status(kube: Kube, body: dict[str, Any], status: dict[str, Any]) -> None:
    old = body.get("status") or {}
    if all(old.get(key) == value for key, value in status.items()):
        return
    meta = body["metadata"]
    patch = dict(status)
    for key, value in status.items():
        # a merge patch merges maps: a key gone from the new map must be removed explicitly
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            patch[key] = {**{k: None for k in old[key] if k not in value}, **value}
    await kube.merge_patch(
        REDB_API, REDB_KIND, meta["namespace"], meta["name"], {"status": patch}, subresource="status"
    )
    for reason, message in status_changes(old, status):
        await post_event(kube, body, "Normal", reason, message)
    warning = spec_event(old, status)
    if warning is not None:
        await post_event(kube, body, "Warning", *warning)


async def report_invalid(kube: Kube, body: dict[str, Any], message: str) -> None:
    """specStatus Invalid and one warning naming the fields (write_status); nothing else is touched."""
    await write_status(kube, body, invalid_status(body, message, now_rfc3339()))


def old_body(body: dict[str, Any], bdb: dict[str, Any] | None) -> dict[str, Any] | None:
    """The validator's `old`: the spec the operator accepted before, with the port the database
    has. A database made before the operator kept the accepted spec was accepted as it is (so what
    an older operator accepted is kept, with a warning, rather than refused)."""
    accepted = accepted_body(body) or (body if bdb is not None else None)
    if accepted is None:
        return None
    spec = {key: value for key, value in (accepted.get("spec") or {}).items() if key != "databasePort"}
    if bdb is not None:
        spec["databasePort"] = bdb["port"]
    return {"metadata": body["metadata"], "spec": spec}


def endpoint_host(rec_body: dict[str, Any], redb: RedisEnterpriseDatabase, port: int, domain: str) -> str:
    """The DNS name of the database's first Service (what clients use)."""
    rec = rec_model(rec_body)
    rigger = rec.spec.services_rigger_spec if rec is not None else None
    try:
        types = parse_service_types(rigger.database_service_type if rigger else "cluster_ip,headless")
    except ValueError:
        types = ("cluster_ip",)
    naming = (rigger.service_naming if rigger else None) or "bdb_name"
    name = service_names(redb.metadata.name, port, types, naming)[0]
    return f"{name}.{redb.metadata.namespace}.svc.{domain}"


async def _bdb_by_name(
    cluster: DatabaseCluster, name: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    bdbs: list[dict[str, Any]] = await cluster.call(lambda api: api.bdbs())
    return next((b for b in bdbs if b.get("name") == name), None), bdbs


async def _patch_finalizers(kube: Kube, body: dict[str, Any], finalizers: list[str]) -> None:
    meta = body["metadata"]
    await kube.merge_patch(
        REDB_API,
        REDB_KIND,
        meta["namespace"],
        meta["name"],
        {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}},
    )


async def reconcile_redb(
    kube: Kube, namespace: str, name: str, *, cluster_domain: str, resync: float
) -> float | None:
    """One reconcile; the seconds until the next one, or None when the REDB is gone."""
    body = await kube.get(REDB_API, REDB_KIND, namespace, name)
    if body is None:
        return None
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        if FINALIZER not in finalizers:
            return None
        done = await _delete(kube, body, cluster_domain)
        if done:
            await _patch_finalizers(kube, body, [f for f in finalizers if f != FINALIZER])
            return None
        return BUSY_SECONDS
    if FINALIZER not in finalizers:
        await _patch_finalizers(kube, body, [*finalizers, FINALIZER])
        body = await kube.get(REDB_API, REDB_KIND, namespace, name)
        if body is None:
            return None

    parsed, _ = parse_redb(plain(body))
    cluster_name = parsed.cluster_name if parsed is not None else None
    rec_body = await find_rec(kube, namespace, cluster_name)
    if rec_body is None or parsed is None:
        # the validator names the missing cluster or the schema problem
        errors = describe(validate_redb(body, old_body(body, None), cluster_exists=rec_body is not None))
        await report_invalid(kube, body, errors or "no RedisEnterpriseCluster")
        return resync
    try:
        cluster = await connect(kube, rec_body, cluster_domain)
        bdb, bdbs = await _bdb_by_name(cluster, name)
    except ClusterUnreachable as exc:
        pending = _pending_status(
            body,
            rec_body["metadata"]["name"],
            f"waiting for the cluster: {exc}",
            describe(redb_warnings(body, old_body(body, None))),
        )
        await write_status(kube, body, pending)
        return BUSY_SECONDS * 2
    old = old_body(body, bdb)
    try:
        redb = check_redb(body, old, cluster_exists=True, ports_in_use=other_ports(bdbs, name))
    except SpecInvalid as invalid:
        await report_invalid(kube, body, describe(invalid.errors))
        return resync
    await remember_accepted(kube, body)

    password = await _ensure_secret(kube, redb)
    if password is None and redb.spec.default_user:
        return BUSY_SECONDS  # a secret we just created is read back on the next pass
    busy = False
    message = ""
    try:
        if bdb is None:
            created = await cluster.call(lambda api: api.create_bdb(bdb_create_body(redb, password)))
            bdb = created
            await post_event(
                kube, body, "Normal", "Created", f"database {name} created (uid {created.get('uid')})"
            )
            busy = True
        elif bdb.get("status") == "active":
            changes = bdb_update_body(redb, bdb, password if redb.spec.default_user else None)
            if changes:
                uid = int(bdb["uid"])
                bdb = await cluster.call(lambda api: api.update_bdb(uid, changes))
                await post_event(
                    kube, body, "Normal", "Updated", "database updated: " + ", ".join(changed_fields(changes))
                )
                busy = True
        else:
            busy = True
    except ClusterApiError as exc:
        if exc.status in (409, 503):  # busy, or the cluster lost its quorum: try again soon
            busy, message = True, f"the cluster says: {exc.error_code or exc.status}"
        else:
            await post_event(kube, body, "Warning", "DatabaseError", str(exc)[:500])
            message = f"the cluster refused the database: {exc.body.get('message', exc.error_code)}"
    except ClusterUnreachable as exc:
        busy, message = True, f"waiting for the cluster: {exc}"

    shards: list[dict[str, Any]] = []
    action_status = None
    if bdb is not None and bdb.get("uid") is not None:
        uid = int(bdb["uid"])
        try:
            shards = await cluster.call(lambda api: api.shards(uid))
            action_uid = bdb.get("action_uid")
            if action_uid:
                action_status = await _action_status(cluster, str(action_uid))
        except (ClusterApiError, ClusterUnreachable):
            pass
        port = bdb.get("port")
        if redb.spec.default_user and port:
            secret = await kube.get("v1", "Secret", namespace, redb.secret_name)
            patch = port_patch(secret, int(port))
            if secret is not None and patch is not None:
                await kube.merge_patch("v1", "Secret", namespace, redb.secret_name, patch)
    port = int(bdb["port"]) if bdb and bdb.get("port") else None
    view = DatabaseView(
        bdb=bdb,
        shards=shards,
        action_status=action_status,
        endpoint_host=endpoint_host(rec_body, redb, port, cluster_domain) if port else None,
        cluster=rec_body["metadata"]["name"],
        message=message,
        warnings=describe(redb_warnings(body, old)),
    )
    await write_status(kube, body, database_status(body, view, now_rfc3339()))
    active = bdb is not None and bdb.get("status") == "active"
    return BUSY_SECONDS if busy or not active else resync


def _pending_status(body: dict[str, Any], cluster: str, message: str, warnings: str) -> dict[str, Any]:
    view = DatabaseView(
        bdb=None,
        shards=[],
        action_status=None,
        endpoint_host=None,
        cluster=cluster,
        message=message,
        warnings=warnings,
    )
    status = database_status(body, view, now_rfc3339())
    previous = body.get("status") or {}
    # keep what the cluster said last time: a moment without an answer changes nothing
    for key in ("status", "databaseUID", "internalEndpoints", "shardStatuses"):
        if key in previous:
            status[key] = previous[key]
    return status


async def _action_status(cluster: DatabaseCluster, action_uid: str) -> str | None:
    async def get(api: ClusterApi) -> dict[str, Any]:
        return await api.action(action_uid)

    try:
        action = await cluster.call(get)
    except ClusterApiError:
        return None
    return str(action.get("status") or "") or None


async def _ensure_secret(kube: Kube, redb: RedisEnterpriseDatabase) -> str | None:
    """The default user's password: from the secret, or a new secret with a generated one.
    "" means no authentication (a user's secret with an empty or no password)."""
    if not redb.spec.default_user:
        return None
    secret = await kube.get("v1", "Secret", redb.metadata.namespace, redb.secret_name)
    if secret is None:
        created = await kube.apply(build_new_secret(redb, secrets.token_urlsafe(PASSWORD_BYTES)))
        return secret_value(created, "password")
    return secret_value(secret, "password") or ""


async def _delete(kube: Kube, body: dict[str, Any], cluster_domain: str) -> bool:
    """Delete the database (and the secret we made); True once it is all gone."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    parsed, _ = parse_redb(plain(body))
    rec_body = await find_rec(kube, namespace, parsed.cluster_name if parsed else None)
    if rec_body is not None and not rec_body["metadata"].get("deletionTimestamp"):
        try:
            cluster = await connect(kube, rec_body, cluster_domain)
            bdb, _ = await _bdb_by_name(cluster, name)
            if bdb is not None:
                if bdb.get("status") != "delete-pending":
                    uid = int(bdb["uid"])
                    await cluster.call(lambda api: api.delete_bdb(uid))
                    await post_event(kube, body, "Normal", "Deleting", f"deleting database {name}")
                return False
        except ClusterApiError as exc:
            if exc.status != 404:
                log.info("delete of database %s/%s waits: %s", namespace, name, exc.error_code or exc.status)
                return False
        except ClusterUnreachable as exc:
            log.info("delete of database %s/%s waits for the cluster: %s", namespace, name, exc)
            return False
    secret_name = parsed.secret_name if parsed else f"redb-{name}"
    secret = await kube.get("v1", "Secret", namespace, secret_name)
    if secret is not None and created_by_operator(secret):
        await kube.delete("v1", "Secret", namespace, secret_name)
    await post_event(kube, body, "Normal", "Deleted", f"database {name} deleted")
    return True
