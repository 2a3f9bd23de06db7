"""Calls between nodes (not part of the public API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node.deps import Daemon, authenticated
from recluster.node.request_models import JoinRequest

router = APIRouter(tags=["internal"], dependencies=[Depends(authenticated)], include_in_schema=False)


@router.post("/v1/internal/join")
async def join(body: JoinRequest, daemon: Daemon) -> dict[str, Any]:
    return await daemon.admit(body)
