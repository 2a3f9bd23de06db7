"""Admission of REDBs: the one validator (`validate_redb`) with the facts it needs, gathered the
same way as the reconcile loop does: the REC exists, the ports of the cluster's other databases;
and the warnings about the fields the operator will not act on (`redb_warnings`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from recluster.api.validation import parse_redb, plain, redb_warnings, validate_redb
from recluster.clients.cluster_api import ClusterApiError
from recluster.operator.context import Context
from recluster.operator.redb.cluster import (
    ClusterUnreachable,
    connect,
    find_rec,
    other_ports,
    rec_default_version,
    rec_versions,
)
from recluster.operator.webhook import Verdict, being_deleted

log = logging.getLogger(__name__)

PORTS_TIMEOUT = 5.0


async def redb_admission(ctx: Context, body: Mapping[str, Any], old: Mapping[str, Any] | None) -> Verdict:
    """The admission of a REDB; `old` is the stored object on an update."""
    new = plain(body)
    if being_deleted(new):
        return Verdict()
    parsed, _ = parse_redb(new)
    namespace = (new.get("metadata") or {}).get("namespace") or ""
    rec_body = await find_rec(ctx.kube, namespace, parsed.cluster_name if parsed else None)
    ports: list[int] = []
    if rec_body is not None and parsed is not None and parsed.spec.database_port is not None:
        try:
            cluster = await connect(ctx, rec_body)
            bdbs = await asyncio.wait_for(cluster.call(lambda api: api.bdbs()), PORTS_TIMEOUT)
            ports = other_ports(bdbs, parsed)
        except (ClusterUnreachable, ClusterApiError, TimeoutError) as exc:
            # the loop checks again with the cluster's answer; admission does not wait for it
            log.info("admission of REDB %s: ports not checked (%s)", parsed.metadata.name, type(exc).__name__)
    previous = plain(old) if old else None
    errors = validate_redb(new, previous, cluster_exists=rec_body is not None, ports_in_use=ports,
                           versions=rec_versions(rec_body) if rec_body is not None else None,
                           default=rec_default_version(rec_body) if rec_body is not None else None)
    return Verdict.of(errors, redb_warnings(new, previous))
