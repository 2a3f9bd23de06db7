"""The cheap check of a settled REDB (redb/settled.py decides what counts as moved): its REDB, its
Secrets, its database and shards read again and compared with what the last full pass recorded."""

from __future__ import annotations

from typing import Any

from recluster.clients.cluster_api import ClusterApiError
from recluster.operator.context import Context
from recluster.operator.redb.cluster import ClusterUnreachable, known_cluster
from recluster.operator.redb.settled import Settled, fingerprint


async def still_settled(ctx: Context, body: dict[str, Any], entry: Settled) -> bool:
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
