"""One level-based reconcile of a REDB: read everything, compare with the spec, take the next step.

Order: the contract finalizer (operator/finalizers.py) -> find the cluster -> validate with the
facts from the cluster (an invalid spec touches nothing) -> database secret (password generated only
when the secret is missing) -> create or update the database through the REST API -> secret's port
-> status and events (operator/status.py). A REDB whose last full pass found it settled is first
checked cheaply (redb/settled.py). Deletion: delete the database, wait until it is gone, delete the
secret we made, drop the finalizer. Services are the rigger's (it deletes those of a database that
is gone; they are also owned by the REDB)."""

from __future__ import annotations

import contextlib
import logging
import secrets
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
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.clients.kubernetes import Kube
from recluster.operator.accepted import accepted_body, remember_accepted
from recluster.operator.context import Context
from recluster.operator.finalizers import held, hold, release
from recluster.operator.redb.backup import backup_info, backup_update, failure_event, wanted_backup
from recluster.operator.redb.cluster import (
    ClusterUnreachable,
    DatabaseCluster,
    connect,
    find_rec,
    known_cluster,
    other_ports,
    rec_default_version,
    rec_model,
    rec_versions,
)
from recluster.operator.redb.mapping import (
    bdb_create_body,
    bdb_update_body,
    changed_fields,
    not_following,
    resolve_roles_permissions,
)
from recluster.operator.redb.restore import (
    RESTORE_CREDENTIALS,
    RESTORED,
    RestoreInvalid,
    import_source,
    restore_wanted,
)
from recluster.operator.redb.secret import (
    CLIENT_CERT_KEY,
    build_new_secret,
    ca_patch,
    created_by_operator,
    port_patch,
    secret_value,
)
from recluster.operator.redb.settled import Settled, fingerprint, settled
from recluster.operator.redb.status import DatabaseView, database_status, status_changes
from recluster.operator.status import now_rfc3339, post_event, report_invalid, unchanged, write_status

log = logging.getLogger(__name__)

PASSWORD_BYTES = 24  # token_urlsafe(24): 32 characters
BUSY_SECONDS = 2.0
FINAL_ACTION_STATES = ("completed", "failed")


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


async def _database(
    cluster: DatabaseCluster, body: dict[str, Any], wanted_port: int | None
) -> tuple[dict[str, Any] | None, list[int]]:
    """The REDB's database, by the uid its status names (one database read) or else by name in the
    list of all, and the ports of the cluster's other databases when the validator needs them (a
    `databasePort` the database does not have yet)."""
    name = body["metadata"]["name"]
    uid = str((body.get("status") or {}).get("databaseUID") or "")
    bdb: dict[str, Any] | None = None
    if uid.isdigit():
        try:
            bdb = await cluster.call(lambda api: api.bdb(int(uid)))
        except ClusterApiError as exc:
            if exc.status != 404:
                raise
        if bdb is not None and bdb.get("name") != name:
            bdb = None
    if bdb is not None and wanted_port in (None, bdb.get("port")):
        return bdb, []
    bdbs: list[dict[str, Any]] = await cluster.call(lambda api: api.bdbs())
    bdb = bdb or next((b for b in bdbs if b.get("name") == name), None)
    return bdb, other_ports(bdbs, name)


async def _still_settled(ctx: Context, body: dict[str, Any], entry: Settled) -> bool:
    """Whether nothing moved since the full pass that found the REDB settled (redb/settled.py)."""
    meta = body["metadata"]
    cluster = known_cluster(ctx, meta["namespace"], entry.rec_name)
    if cluster is None:
        return False
    if not entry.unmoved(body, cluster.client.rec.metadata.generation):
        return False
    if entry.secret_name:
        secret = await ctx.kube.get("v1", "Secret", meta["namespace"], entry.secret_name)
        if not entry.same_secret(secret):
            return False
    for other, version in entry.other_secrets:
        found = await ctx.kube.get("v1", "Secret", meta["namespace"], other)
        if found is None or found["metadata"].get("resourceVersion") != version:
            return False
    try:
        bdb = await cluster.call(lambda api: api.bdb(entry.uid))
        shards = await cluster.call(lambda api: api.shards(entry.uid))
    except (ClusterApiError, ClusterUnreachable):
        return False
    return fingerprint(bdb, shards) == entry.seen


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
        if await _delete(ctx, body):
            await release(kube, body, FINALIZER)
            return None
        return BUSY_SECONDS
    entry = ctx.databases.get(namespace, name)
    if entry is not None and await _still_settled(ctx, body, entry):
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
        bdb, ports_in_use = await _database(cluster, body, parsed.spec.database_port)
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

    password, secret = await _ensure_secret(kube, redb)
    if password is None and redb.spec.default_user:
        return BUSY_SECONDS  # a secret we just created is read back on the next pass
    client_certs, missing = await _client_certificates(kube, redb)
    backup_secret = await _backup_secret(kube, redb)
    backup, backup_missing = wanted_backup(redb, _decoded(backup_secret))
    busy = False
    try:
        permissions, unknown = await _roles_permissions(cluster, redb)
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
            busy = await _restore(kube, cluster, body, bdb) or busy
        except (ClusterApiError, ClusterUnreachable) as exc:
            busy, message = True, f"restoring: the cluster says: {getattr(exc, 'error_code', '') or exc}"

    shards: list[dict[str, Any]] | None = None
    action_status = None
    wrote_secret = False
    if bdb is not None and bdb.get("uid") is not None:
        uid = int(bdb["uid"])
        try:
            shards = await cluster.call(lambda api: api.shards(uid))
            action_status = await _action_status(cluster, body, bdb)
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


async def _restore(kube: Kube, cluster: DatabaseCluster, body: dict[str, Any], bdb: dict[str, Any]) -> bool:
    """One step of a REDB's restore from a backup (redb/restore.py); True while the import runs.
    The end is written to the annotation RESTORED (the guard: it runs once) and as an event."""
    meta = body["metadata"]
    annotations: dict[str, str] = meta.get("annotations") or {}
    uid = int(bdb["uid"])
    state = bdb.get("import_status")
    if state == "importing":
        return True
    if state in ("succeeded", "failed"):
        ok = state == "succeeded"
        result = "succeeded" if ok else f"failed: {bdb.get('import_failure_message') or state}"
        await kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"],
                               {"metadata": {"annotations": {RESTORED: result}}})
        await post_event(kube, body, "Normal" if ok else "Warning", "Restored" if ok else "RestoreFailed",
                         "database restored from the backup" if ok else f"restore {result}"[:500])
        return False
    secret = None
    name = annotations.get(RESTORE_CREDENTIALS)
    if name:
        found = await kube.get("v1", "Secret", meta["namespace"], name)
        if found is not None:
            secret = {key: value for key in ("access_key_id", "secret_access_key", "ca_cert")
                      if (value := secret_value(found, key))}
    try:
        source = import_source(annotations, secret)
    except RestoreInvalid as exc:
        await kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"],
                               {"metadata": {"annotations": {RESTORED: f"failed: {exc}"}}})
        await post_event(kube, body, "Warning", "RestoreFailed", str(exc)[:500])
        return False
    await cluster.call(lambda api: api.import_bdb(uid, source))
    await post_event(kube, body, "Normal", "Restoring", f"importing {source['filename']} into the database")
    return True


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


async def _action_status(cluster: DatabaseCluster, body: dict[str, Any], bdb: dict[str, Any]) -> str | None:
    """The status of the database's last action; one the status already shows as finished is not
    asked again."""
    action_uid = str(bdb.get("action_uid") or "")
    if not action_uid:
        return None
    previous = body.get("status") or {}
    finished = previous.get("lastActionStatus") in FINAL_ACTION_STATES
    if finished and previous.get("lastActionUid") == action_uid:
        return str(previous["lastActionStatus"])

    async def get(api: ClusterApi) -> dict[str, Any]:
        return await api.action(action_uid)

    try:
        action = await cluster.call(get)
    except ClusterApiError:
        return None
    return str(action.get("status") or "") or None


async def _ensure_secret(
    kube: Kube, redb: RedisEnterpriseDatabase
) -> tuple[str | None, dict[str, Any] | None]:
    """The default user's password and the secret holding it: from the secret, or a new secret with
    a generated one. "" means no authentication (a user's secret with an empty or no password)."""
    if not redb.spec.default_user:
        return None, None
    secret = await kube.get("v1", "Secret", redb.metadata.namespace, redb.secret_name)
    if secret is None:
        created = await kube.apply(build_new_secret(redb, secrets.token_urlsafe(PASSWORD_BYTES)))
        return secret_value(created, "password"), created
    return secret_value(secret, "password") or "", secret


async def _roles_permissions(
    cluster: DatabaseCluster, redb: RedisEnterpriseDatabase
) -> tuple[list[dict[str, int]], list[str]]:
    """The spec's `rolesPermissions` as the cluster's uids, and the names it does not know (asked
    only of a database that lists any)."""
    if not redb.spec.roles_permissions:
        return [], []
    roles = await cluster.call(lambda api: api.objects("roles"))
    acls = await cluster.call(lambda api: api.objects("redis_acls"))
    return resolve_roles_permissions(redb, roles, acls)


async def _backup_secret(kube: Kube, redb: RedisEnterpriseDatabase) -> dict[str, Any] | None:
    """The Secret `backup.s3.awsSecretName` names (None: none named, or missing)."""
    backup = redb.spec.backup
    if backup is None or backup.s3 is None:
        return None
    return await kube.get("v1", "Secret", redb.metadata.namespace, backup.s3.aws_secret_name)


def _decoded(secret: dict[str, Any] | None) -> dict[str, str] | None:
    if secret is None:
        return None
    return {key: value for key in (secret.get("data") or {}) if (value := secret_value(secret, key))}


async def _client_certificates(kube: Kube, redb: RedisEnterpriseDatabase) -> tuple[list[str], str]:
    """The PEM certificates of the Secrets `clientAuthenticationCertificates` names (key `cert`), and
    what is missing ("" when nothing is)."""
    certs: list[str] = []
    for name in redb.spec.client_authentication_certificates or []:
        secret = await kube.get("v1", "Secret", redb.metadata.namespace, name)
        cert = secret_value(secret, CLIENT_CERT_KEY) if secret is not None else None
        if not cert:
            where = "does not exist" if secret is None else f"has no '{CLIENT_CERT_KEY}' key"
            return [], (f"waiting for the client certificate: Secret {name} {where} "
                        "(clientAuthenticationCertificates)")
        certs.append(cert)
    return certs, ""


async def _delete(ctx: Context, body: dict[str, Any]) -> bool:
    """Delete the database (and the secret we made); True once it is all gone."""
    kube, meta = ctx.kube, body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    parsed, _ = parse_redb(plain(body))
    rec_body = await find_rec(kube, namespace, parsed.cluster_name if parsed else None)
    if rec_body is not None and not rec_body["metadata"].get("deletionTimestamp"):
        try:
            cluster = await connect(ctx, rec_body)
            bdb, _ = await _database(cluster, body, None)
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
