"""`kubectl recluster failover <db>`: a planned failover through the REST API (POST
/v1/shards/<master>/actions/failover: the replica's sentinel promotes it, the old master follows it),
then waiting, with a deadline, until the cluster reports the master on another node and the
database's Services lead to the new master's pod (the services rigger moves them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from recluster.admin.databases import resolve_database
from recluster.admin.errors import AdminError
from recluster.admin.session import Session, wait_until
from recluster.admin.status import pod_of_node, redb_cluster, slice_targets
from recluster.api.naming import BDB_UID_LABEL, CLUSTER_LABEL
from recluster.clients.cluster_api import ClusterApiError


def failover_plan(bdb: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """The master shard to fail over; AdminError when the database cannot take a planned failover."""
    name = f"database {bdb.get('name')} (db:{bdb['uid']})"
    if not bdb.get("replication"):
        raise AdminError(f"{name} has no replica (replication is off): there is nothing to fail over to")
    if bdb.get("status") != "active":
        raise AdminError(f"{name} is {bdb.get('status')}: a planned failover needs it active")
    masters = [s for s in shards if s.get("role") == "master"]
    if len(masters) != 1:
        raise AdminError(f"{name} has {len(masters)} master shards; wait until it has one")
    replicas = [s for s in shards if s.get("role") != "master" and s.get("status") == "active"]
    if not replicas:
        raise AdminError(f"{name} has no replica in sync: a failover now could lose writes")
    return masters[0]


def new_master(shards: list[dict[str, Any]], old_node: str) -> dict[str, Any] | None:
    """The active master shard on another node than `old_node`, once there is one."""
    return next((s for s in shards if s.get("role") == "master" and str(s.get("node_uid")) != old_node
                 and s.get("status") == "active"), None)


async def failover(
    session: Session, rec_name: str | None, ref: str, wait_s: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    rec = await session.rec(rec_name)
    name = rec["metadata"]["name"]
    redbs = [r for r in await session.redbs() if redb_cluster(r, name)]
    pods = await session.node_pods(rec)
    async with session.rest(rec) as (api, _):
        bdb, redb = resolve_database(ref, await api.bdbs(), redbs)
        uid = int(bdb["uid"])
        master = failover_plan(bdb, await api.shards(uid))
        nodes = await api.nodes()
        pod_of = {str(n["uid"]): pod_of_node(n, pods) for n in nodes}
        old_node = str(master["node_uid"])
        label = f"database {bdb['name']} (db:{uid})"
        progress(f"failing over {label}: master shard {master['uid']} on node {old_node} "
                 f"({pod_of.get(old_node)})")
        started = time.monotonic()
        try:
            await api.fail_over_shard(master["uid"])
        except ClusterApiError as exc:
            raise AdminError(f"the cluster refused the failover of {label}: {exc}") from None

        async def moved() -> dict[str, Any] | None:
            return new_master(await api.shards(uid), old_node)

        promoted = await wait_until(f"a replica of {label} to take over", moved, wait_s, progress, 0.2)
        took = time.monotonic() - started
        new_node = str(promoted["node_uid"])
        progress(f"node {new_node} ({pod_of.get(new_node)}) holds the master after {took:.1f} s")

    new_pod = pod_of.get(new_node)
    selector = f"{CLUSTER_LABEL}={name},{BDB_UID_LABEL}={uid}"
    services = [s["metadata"]["name"] for s in await session.list_objects("v1", "Service", selector)]

    async def services_follow() -> dict[str, list[str | None]] | None:
        slices = await session.list_objects("discovery.k8s.io/v1", "EndpointSlice", selector)
        targets = {s: [t[0] for t in slice_targets(slices, s)] for s in services}
        return targets if all(t == [new_pod] for t in targets.values()) else None

    services_took: float | None = None
    left = max(5.0, wait_s - (time.monotonic() - started))
    try:
        await wait_until(f"the Services of {label} to lead to {new_pod}", services_follow, left, progress)
        services_took = time.monotonic() - started
    except AdminError as exc:
        progress(f"warning: {exc}")
    return {
        "database": bdb["name"],
        "bdb": uid,
        "redb": redb["metadata"]["name"] if redb else None,
        "oldMaster": {"shard": int(master["uid"]), "node": int(old_node), "pod": pod_of.get(old_node)},
        "newMaster": {"shard": int(promoted["uid"]), "node": int(new_node), "pod": new_pod},
        "seconds": round(took, 2),
        "services": services,
        "servicesSeconds": None if services_took is None else round(services_took, 2),
    }


def describe(result: dict[str, Any]) -> str:
    old, new = result["oldMaster"], result["newMaster"]
    text = (f"database {result['database']} (db:{result['bdb']}): master moved from node {old['node']} "
            f"({old['pod']}) to node {new['node']} ({new['pod']}) in {result['seconds']:.1f} s")
    services = ", ".join(result["services"])
    if result["servicesSeconds"] is not None:
        text += f"; Services {services} lead to {new['pod']} after {result['servicesSeconds']:.1f} s"
    elif result["services"]:
        text += f"; Services {services} did not follow yet (the services rigger moves them)"
    return text
