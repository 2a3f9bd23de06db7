"""The cluster, its policy and its license: /v1/cluster, /v1/cluster/policy, /v1/license."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node import operations
from recluster.node.config import engine_table
from recluster.node.deps import Daemon, authenticated
from recluster.node.models import LicenseUpdate, PolicyUpdate
from recluster.node.schemas import AUTHENTICATED, Certificates, Cluster, License, Policy, doc
from recluster.node.views import certificates_view, cluster_view, license_view, policy_view

router = APIRouter(tags=["cluster"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.get("/v1/cluster", **doc(Cluster))
async def get_cluster(daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    leader = await daemon.leader_addr()
    return cluster_view(state, leader[0] if leader else None, engine_table(daemon.cfg))


@router.get("/v1/cluster/policy", **doc(Policy))
async def get_policy(daemon: Daemon) -> dict[str, Any]:
    return policy_view(await daemon.state(), daemon.cfg.replica_move_grace_s)


@router.put("/v1/cluster/policy", **doc(Policy, 400))
async def put_policy(body: PolicyUpdate, daemon: Daemon) -> dict[str, Any]:
    return await operations.put_policy(daemon, body)


@router.get("/v1/cluster/certificates", **doc(Certificates))
async def get_certificates(daemon: Daemon) -> dict[str, Any]:
    return certificates_view(await daemon.state())


@router.get("/v1/license", **doc(License))
async def get_license(daemon: Daemon) -> dict[str, Any]:
    return license_view(await daemon.state())


@router.put("/v1/license", **doc(License, 400, 413))
async def put_license(body: LicenseUpdate, daemon: Daemon) -> dict[str, Any]:
    return await operations.put_license(daemon, body)
