"""What a REDB's pass asks the cluster about its database: the database itself (by the uid its status
names, else by name), the status of its last action, and the cluster's uids of the roles and Redis
ACLs its spec names."""

from __future__ import annotations

from typing import Any

from recluster.api.redb import RedisEnterpriseDatabase
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.operator.redb.cluster import DatabaseCluster, other_ports
from recluster.operator.redb.mapping import resolve_roles_permissions

FINAL_ACTION_STATES = ("completed", "failed")


async def find_database(
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


async def last_action_status(
    cluster: DatabaseCluster, body: dict[str, Any], bdb: dict[str, Any]
) -> str | None:
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


async def cluster_roles_permissions(
    cluster: DatabaseCluster, redb: RedisEnterpriseDatabase
) -> tuple[list[dict[str, int]], list[str]]:
    """The spec's `rolesPermissions` as the cluster's uids, and the names it does not know (asked
    only of a database that lists any)."""
    if not redb.spec.roles_permissions:
        return [], []
    roles = await cluster.call(lambda api: api.objects("roles"))
    acls = await cluster.call(lambda api: api.objects("redis_acls"))
    return resolve_roles_permissions(redb, roles, acls)
