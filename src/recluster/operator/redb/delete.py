"""The deletion of a REDB: its database deleted through the REST API and waited for, then the
database Secret the operator made; the reconcile then releases the finalizer."""

from __future__ import annotations

import logging
from typing import Any

from recluster.api.validation import parse_redb, plain
from recluster.clients.cluster_api import ClusterApiError
from recluster.operator.context import Context
from recluster.operator.redb.cluster import ClusterUnreachable, connect, find_rec
from recluster.operator.redb.cluster_reads import find_database
from recluster.operator.redb.secret import created_by_operator
from recluster.operator.status import post_event

log = logging.getLogger(__name__)


async def delete_database(ctx: Context, body: dict[str, Any]) -> bool:
    """Delete the database (and the secret we made); True once it is all gone."""
    kube, meta = ctx.kube, body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    parsed, _ = parse_redb(plain(body))
    rec_body = await find_rec(kube, namespace, parsed.cluster_name if parsed else None)
    if rec_body is not None and not rec_body["metadata"].get("deletionTimestamp"):
        try:
            cluster = await connect(ctx, rec_body)
            bdb, _ = await find_database(cluster, body, None)
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
