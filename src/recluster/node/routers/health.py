"""Readiness: true only when the node is in the cluster, its CCS replica is in sync and its shards run."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from recluster.node.deps import Daemon
from recluster.node.schemas import Ready

router = APIRouter(tags=["health"])


@router.get("/v1/ready", responses={200: {"model": Ready, "description": "Ready"},
                                    503: {"model": Ready, "description": "Not ready; `reason` says why"}})
@router.get("/readyz", include_in_schema=False)
async def ready(daemon: Daemon) -> JSONResponse:
    ok, reason = await daemon.ready()
    return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)


@router.get("/livez", include_in_schema=False)
async def live() -> dict[str, bool]:
    return {"live": True}
