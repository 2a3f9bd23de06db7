"""Per-database statistics from INFO of the master shard: /v1/bdbs/stats[/last]/{uid}."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends
from redis.exceptions import RedisError

from recluster.clients.redis_retry import no_retry
from recluster.node.daemon import NodeDaemon
from recluster.node.database_tls import node_client_tls
from recluster.node.deps import Daemon, authenticated
from recluster.node.errors import ApiError
from recluster.node.schemas import AUTHENTICATED, Stats, StatsValues, doc
from recluster.node.stats import bdb_stats
from recluster.node.views import now_iso

router = APIRouter(tags=["stats"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


async def _master_info(daemon: NodeDaemon, uid: int) -> dict[str, Any]:
    state = await daemon.state()
    bdb = state.bdbs.get(uid)
    if bdb is None:
        raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
    if bdb.status not in ("active", "active-change-pending"):
        raise ApiError(406, "db_not_active", f"database {uid} is '{bdb.status}'")
    master = next((s for s in state.shards_of(uid) if s.role == "master"), None)
    node = state.nodes.get(master.node_uid) if master else None
    if node is None:
        raise ApiError(503, "no_master", f"database {uid} has no master shard right now")
    user, password = bdb.login("control")
    client = aioredis.Redis(host=node.addr, port=bdb.port, username=user, password=password,
                            socket_timeout=2, socket_connect_timeout=1, retry=no_retry(),
                            **(node_client_tls(daemon.cfg.data_dir) if bdb.tls() else {}))
    try:
        info: dict[str, Any] = await client.info("all")
        return info
    except (RedisError, OSError) as exc:
        raise ApiError(503, "shard_unreachable",
                       f"the master shard of database {uid} does not answer") from exc
    finally:
        await client.aclose()


@router.get("/v1/bdbs/stats/last/{uid}", **doc(dict[str, StatsValues], 400, 404))
async def last_stats(uid: int, daemon: Daemon) -> dict[str, Any]:
    now = now_iso()
    return {str(uid): {"stime": now, "etime": now, **bdb_stats(await _master_info(daemon, uid))}}


@router.get("/v1/bdbs/stats/{uid}", **doc(Stats, 400, 404))
async def stats(uid: int, daemon: Daemon) -> dict[str, Any]:
    now = now_iso()
    values = bdb_stats(await _master_info(daemon, uid))
    return {"uid": str(uid), "intervals": [{"interval": "1sec", "stime": now, "etime": now, **values}]}
