"""Shards: /v1/shards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node.deps import Daemon, authenticated
from recluster.node.errors import ApiError
from recluster.node.schemas import AUTHENTICATED, Shard, ShardFailover, doc
from recluster.node.views import shard_view

router = APIRouter(tags=["shards"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.get("/v1/shards", **doc(list[Shard]))
async def list_shards(daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    return [shard_view(state, s) for s in sorted(state.shards.values(), key=lambda s: s.uid)]


@router.post("/v1/shards/{uid}/actions/failover", **doc(ShardFailover, 400, 404, 409))
async def fail_over_shard(uid: int, daemon: Daemon) -> dict[str, Any]:
    """A planned failover of a master shard: its database's replica becomes the master (Sentinel
    promotes it; the old master follows it). Shaped like Redis Enterprise's call of this name."""
    state = await daemon.state()
    shard = state.shards.get(uid)
    if shard is None:
        raise ApiError(404, "shard_not_exist", f"shard {uid} does not exist")
    bdb = state.bdbs.get(shard.bdb_uid)
    if bdb is None or bdb.status != "active":
        raise ApiError(409, "busy", f"the database of shard {uid} is not active; retry when it is")
    if shard.role != "master":
        raise ApiError(406, "invalid_parameter", f"shard {uid} is a replica: fail over its database's master "
                       "shard", "uid")
    if not bdb.replication:
        raise ApiError(406, "invalid_parameter", f"database {bdb.uid} has no replica to fail over to", "uid")
    await daemon.fail_over(bdb.name, len(state.nodes))
    return {"shard_uid": str(uid), "bdb_uid": bdb.uid, "status": "failover requested"}


@router.get("/v1/shards/{uid}", **doc(Shard, 400, 404))
async def get_shard(uid: int, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    shard = state.shards.get(uid)
    if shard is None:
        raise ApiError(404, "shard_not_exist", f"shard {uid} does not exist")
    return shard_view(state, shard)
