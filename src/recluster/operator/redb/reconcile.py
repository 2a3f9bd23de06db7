"""One level-based reconcile of a REDB: read everything, compare with the spec, take the next step.

Order: the contract finalizer (operator/finalizers.py) -> find the cluster -> validate with the
facts from the cluster (an invalid spec touches nothing) -> database secret (password generated only
when the secret is missing) -> create or update the database through the REST API -> secret's port
-> status and events (operator/status.py). A REDB whose last full pass found it settled is first
checked cheaply (redb/settled.py decides, redb/settled_check.py reads). Deletion (redb/delete.py):
delete the database, wait until it is gone, delete the secret we made; then drop the finalizer.
What a pass reads: the REDB's Secrets (redb/referenced_secrets.py), its database, last action and
roles (redb/cluster_reads.py); a restore from a backup is one step a pass (redb/restore_step.py).
Services are the rigger's (it deletes those of a database that is gone; they are also owned by the
REDB)."""

from __future__ import annotations

import contextlib
from typing import Any

from recluster.api.naming import parse_service_types, service_names
from recluster.api.redb import API_VERSION, FINALIZER, KIND, RedisEnterpriseDatabase, TlsMode
from recluster.api.validation import (
    SpecInvalid,
    check_redb,
    describe,
    parse_redb,
    plain,
    redb_warnings,
    validate_redb,
)
from recluster.clients.cluster_api import ClusterApiError
from recluster.operator.accepted import accepted_body, remember_accepted
from recluster.operator.context import Context
from recluster.operator.finalizers import held, hold, release
from recluster.operator.redb.backup import backup_info, backup_update, failure_event, wanted_backup
from recluster.operator.redb.cluster import (
    ClusterUnreachable,
    connect,
    find_rec,
    rec_default_version,
    rec_model,
    rec_versions,
)
from recluster.operator.redb.cluster_reads import cluster_roles_permissions, find_database, last_action_status
from recluster.operator.redb.delete import delete_database
from recluster.operator.redb.mapping import (
    bdb_create_body,
    bdb_update_body,
    changed_fields,
    not_following,
)
from recluster.operator.redb.referenced_secrets import (
    client_certificates,
    decoded_secret,
    ensure_secret,
    read_backup_secret,
)
from recluster.operator.redb.restore import restore_wanted
from recluster.operator.redb.restore_step import restore_step
from recluster.operator.redb.secret import ca_patch, port_patch
from recluster.operator.redb.settled import settled
from recluster.operator.redb.settled_check import still_settled
from recluster.operator.redb.status import DatabaseView, database_status, status_changes
from recluster.operator.status import now_rfc3339, post_event, report_invalid, unchanged, write_status

BUSY_SECONDS = 2.0


def old_body(body: dict[str, Any], bdb: dict[str, Any] | None) -> dict[str, Any] | None:
    """The validator's `old`: the spec the operator accepted before, with the port the database
    has. A database made before the operator kept the accepted spec was accepted as it is (so what
    an older operator accepted is kept, with a warning, rather than refused)."""
    accepted = accepted_body(body) or (body if bdb is not None else None)
    if accepted is None:
        return None
    spec = {key: value for key, value in (accepted.get("spec") or {}).items() if key != "databasePort"}
    if bdb is None:
        return {"metadata": body["metadata"], "spec": spec}
    spec["databasePort"] = bdb["port"]
    # the engine the database runs: what a changed redisVersion is checked against
    return {"metadata": body["metadata"], "spec": spec, "status": {"version": bdb.get("version")}}


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


async def reconcile_redb(ctx: Context, namespace: str, name: str) -> float | None:
    """One reconcile; the seconds until the next one, or None when the REDB is gone."""
    kube, resync = ctx.kube, ctx.settings.resync_seconds
    body = await kube.get(API_VERSION, KIND, namespace, name)
    if body is None:
        ctx.databases.record(namespace, name, None)
        return None
    if body["metadata"].get("deletionTimestamp"):
        ctx.databases.record(namespace, name, None)
        if not held(body, FINALIZER):
            return None
        if await delete_database(ctx, body):
            await release(kube, body, FINALIZER)
            return None
        return BUSY_SECONDS
    entry = ctx.databases.get(namespace, name)
    if entry is not None and await still_settled(ctx, body, entry):
        return resync
    ctx.databases.record(namespace, name, None)
    body = await hold(kube, body, FINALIZER)

    parsed, _ = parse_redb(plain(body))
    cluster_name = parsed.cluster_name if parsed is not None else None
    rec_body = await find_rec(kube, namespace, cluster_name)
    if rec_body is None or parsed is None:
        # the validator names the missing cluster or the schema problem
        errors = describe(validate_redb(body, old_body(body, None), cluster_exists=rec_body is not None))
        await report_invalid(kube, body, errors or "no RedisEnterpriseCluster", status_changes)
        return resync
    try:
        cluster = await connect(ctx, rec_body)
        bdb, ports_in_use = await find_database(cluster, body, parsed.spec.database_port)
    except ClusterUnreachable as exc:
        pending = _pending_status(
            body,
            rec_body["metadata"]["name"],
            f"waiting for the cluster: {exc}",
            describe(redb_warnings(body, old_body(body, None))),
        )
        await write_status(kube, body, pending, status_changes)
        return BUSY_SECONDS * 2
    old = old_body(body, bdb)
    try:
        redb = check_redb(body, old, cluster_exists=True, ports_in_use=ports_in_use,
                          versions=rec_versions(rec_body), default=rec_default_version(rec_body))
    except SpecInvalid as invalid:
        await report_invalid(kube, body, describe(invalid.errors), status_changes)
        return resync
    await remember_accepted(kube, body)

    password, secret = await ensure_secret(kube, redb)
    if password is None and redb.spec.default_user:
        return BUSY_SECONDS  # a secret we just created is read back on the next pass
    client_certs, missing = await client_certificates(kube, redb)
    backup_secret = await read_backup_secret(kube, redb)
    backup, backup_missing = wanted_backup(redb, decoded_secret(backup_secret))
    busy = False
    try:
        permissions, unknown = await cluster_roles_permissions(cluster, redb)
        missing = "; ".join([m for m in (missing, backup_missing, *unknown) if m])
        message = missing
        if missing:
            busy = True  # nothing is created or changed without the certificates or users it names
        elif bdb is None:
            new_body = {**bdb_create_body(redb, password, client_certs, permissions), **backup}
            created = await cluster.call(lambda api: api.create_bdb(new_body))
            bdb = created
            await post_event(
                kube, body, "Normal", "Created", f"database {name} created (uid {created.get('uid')})"
            )
            busy = True
        elif bdb.get("status") == "active":
            default = rec_default_version(rec_body)
            changes = bdb_update_body(redb, bdb, password if redb.spec.default_user else None, client_certs,
                                      permissions, default)
            changes.update(backup_update(backup, bdb))
            message = not_following(redb, bdb, default) or message
            if changes:
                uid = int(bdb["uid"])
                before = str(bdb.get("version") or "")
                bdb = await cluster.call(lambda api: api.update_bdb(uid, changes))
                await post_event(
                    kube, body, "Normal", "Updated", "database updated: " + ", ".join(changed_fields(changes))
                )
                if "redis_version" in changes:
                    await post_event(kube, body, "Normal", "EngineUpgrade",
                                     f"upgrading the engine from {before} to {bdb.get('redis_version')} in "
                                     "place: replicas first, then a failover, then the old master")
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

    annotations = body["metadata"].get("annotations") or {}
    if bdb is not None and bdb.get("status") == "active" and restore_wanted(annotations):
        try:
            busy = await restore_step(kube, cluster, body, bdb) or busy
        except (ClusterApiError, ClusterUnreachable) as exc:
            busy, message = True, f"restoring: the cluster says: {getattr(exc, 'error_code', '') or exc}"

    shards: list[dict[str, Any]] | None = None
    action_status = None
    wrote_secret = False
    if bdb is not None and bdb.get("uid") is not None:
        uid = int(bdb["uid"])
        try:
            shards = await cluster.call(lambda api: api.shards(uid))
            action_status = await last_action_status(cluster, body, bdb)
        except (ClusterApiError, ClusterUnreachable):
            pass
        port = bdb.get("port")
        patch = port_patch(secret, int(port)) if redb.spec.default_user and port else None
        if secret is not None and redb.spec.tls_mode == TlsMode.ENABLED:
            with contextlib.suppress(ClusterApiError, ClusterUnreachable):
                ca = await cluster.call(lambda api: api.certificates())
                published = ca_patch(secret, str(ca.get("proxy_cert") or ""))
                if published is not None:
                    patch = {"data": {**(patch or {}).get("data", {}), **published["data"]}}
        if secret is not None and patch is not None:
            await kube.merge_patch("v1", "Secret", namespace, redb.secret_name, patch)
            wrote_secret = True
    if bdb is not None and not redb.spec.default_user and bdb.get("default_user", True) and not message:
        message = ("this database was made before defaultUser: false was built: its default user is on "
                   "without a password; recreate the database to turn it off")
    port = int(bdb["port"]) if bdb and bdb.get("port") else None
    view = DatabaseView(
        bdb=bdb,
        shards=shards or [],
        action_status=action_status,
        endpoint_host=endpoint_host(rec_body, redb, port, ctx.settings.cluster_domain) if port else None,
        cluster=rec_body["metadata"]["name"],
        message=message,
        warnings=describe(redb_warnings(body, old)),
    )
    status = database_status(body, view, now_rfc3339())
    info = backup_info(bdb) if bdb is not None else None
    if info is not None:
        status["backupInfo"] = info
    wrote_status = not unchanged(body.get("status") or {}, status)
    await write_status(kube, body, status, status_changes)
    failure = failure_event(body.get("status") or {}, info)
    if failure is not None:
        await post_event(kube, body, "Warning", "BackupFailed", failure)
    active = bdb is not None and bdb.get("status") == "active"
    quiet = not (busy or message or wrote_secret or wrote_status)
    if active and quiet and bdb is not None and shards is not None:  # settled: cheap resyncs from now
        secret_name = redb.secret_name if redb.spec.default_user else None
        entry = settled(body, secret_name, secret, rec_body, bdb, shards, ctx.settings.full_resync_seconds,
                        (backup_secret,) if backup_secret is not None else ())
        ctx.databases.record(namespace, name, entry)
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

