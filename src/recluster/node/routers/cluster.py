"""The cluster and its license: /v1/cluster, /v1/license."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node import operations
from recluster.node.deps import Daemon, authenticated
from recluster.node.models import LicenseUpdate
from recluster.node.schemas import AUTHENTICATED, Cluster, License, doc
from recluster.node.views import cluster_view, license_view

router = APIRouter(tags=["cluster"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.get("/v1/cluster", **doc(Cluster))
async def get_cluster(daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    leader = await daemon.store.leader_addr() if daemon.store else None
    return cluster_view(state, leader[0] if leader else None)


@router.get("/v1/license", **doc(License))
async def get_license(daemon: Daemon) -> dict[str, Any]:
    return license_view(await daemon.state())


@router.put("/v1/license", **doc(License, 400, 413))
async def put_license(body: LicenseUpdate, daemon: Daemon) -> dict[str, Any]:
    return await operations.put_license(daemon, body)
