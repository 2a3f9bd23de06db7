"""Shards: /v1/shards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node.deps import Daemon, authenticated
from recluster.node.errors import ApiError
from recluster.node.schemas import AUTHENTICATED, Shard, doc
from recluster.node.views import shard_view

router = APIRouter(tags=["shards"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.get("/v1/shards", **doc(list[Shard]))
async def list_shards(daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    return [shard_view(state, s) for s in sorted(state.shards.values(), key=lambda s: s.uid)]


@router.get("/v1/shards/{uid}", **doc(Shard, 400, 404))
async def get_shard(uid: int, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    shard = state.shards.get(uid)
    if shard is None:
        raise ApiError(404, "shard_not_exist", f"shard {uid} does not exist")
    return shard_view(state, shard)
