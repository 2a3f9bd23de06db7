"""Databases: /v1/bdbs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from recluster.node import operations
from recluster.node.access import sees_secrets
from recluster.node.config import engine_table
from recluster.node.deps import Daemon, Level, authenticated
from recluster.node.errors import ApiError
from recluster.node.request_models import BdbCreate, BdbUpdate
from recluster.node.schemas import AUTHENTICATED, Bdb, BdbDeleted, BdbFields, Shard, doc
from recluster.node.views import bdb_view, shard_view, without_secrets

router = APIRouter(tags=["databases"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.get("/v1/bdbs", **doc(list[BdbFields]))
async def list_bdbs(daemon: Daemon, level: Level, fields: str | None = Query(default=None)) -> Response:
    views, body = daemon.bdb_list.of(await daemon.state())
    secrets = sees_secrets(level)
    if fields or not secrets:
        wanted = {f.strip() for f in fields.split(",")} if fields else None
        return JSONResponse([{k: v for k, v in (view if secrets else without_secrets(view)).items()
                              if wanted is None or k in wanted} for view in views])
    return Response(body, media_type="application/json")


@router.get("/v1/bdbs/{uid}", **doc(Bdb, 400, 404))
async def get_bdb(uid: int, daemon: Daemon, level: Level) -> dict[str, Any]:
    state = await daemon.state()
    bdb = state.bdbs.get(uid)
    if bdb is None:
        raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
    view = bdb_view(state, bdb, engine_table(daemon.cfg))
    return view if sees_secrets(level) else without_secrets(view)


@router.post("/v1/bdbs", **doc(Bdb, 400, 409, 413))
async def create_bdb(body: BdbCreate, daemon: Daemon) -> dict[str, Any]:
    return await operations.create_bdb(daemon, body)


@router.put("/v1/bdbs/{uid}", **doc(Bdb, 400, 404, 409, 413))
async def update_bdb(uid: int, body: BdbUpdate, daemon: Daemon) -> dict[str, Any]:
    return await operations.update_bdb(daemon, uid, body)


@router.delete("/v1/bdbs/{uid}", **doc(BdbDeleted, 400, 404, 409))
async def delete_bdb(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await operations.delete_bdb(daemon, uid)


@router.get("/v1/bdbs/{uid}/shards", **doc(list[Shard], 400, 404))
async def bdb_shards(uid: int, daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    if uid not in state.bdbs:
        raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
    return [shard_view(state, s) for s in state.shards_of(uid)]
