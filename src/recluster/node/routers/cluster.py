"""The cluster, its policy, certificates and license: /v1/cluster, /v1/cluster/policy,
/v1/cluster/certificates (and update_cert), /v1/license."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node import operations, proxy_certificate
from recluster.node.config import engine_table
from recluster.node.deps import Daemon, authenticated
from recluster.node.request_models import LicenseUpdate, PolicyUpdate
from recluster.node.schemas import (
    AUTHENTICATED,
    Certificates,
    CertificateUpdate,
    Cluster,
    License,
    Policy,
    doc,
)
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


@router.put("/v1/cluster/update_cert", **doc(Certificates, 400))
async def update_cert(body: CertificateUpdate, daemon: Daemon) -> dict[str, Any]:
    """Set the databases' certificate (`name: proxy`): every TLS shard serves it, reloaded without a
    restart; its CA joins what the cluster's own clients trust and what `proxy_cert` publishes. Or a
    node HTTPS server's (`api` 9443, `cm` 8443, `metrics_exporter` 8070): every node serves it to new
    connections, without a restart; the callers of that server must trust its CA (docs/certificates.md)."""
    return await proxy_certificate.update_cert(daemon, body)


@router.post("/v1/cluster/certificates/rotate", **doc(Certificates, 400, 409))
async def rotate_certificates(daemon: Daemon,
                              body: proxy_certificate.RotateRequest | None = None) -> dict[str, Any]:
    """Rotate the cluster's database CA: the next CA is trusted at once (in `proxy_cert`) and signs
    the databases' certificates `overlap_seconds` later (a day by default); no shard restarts."""
    return await proxy_certificate.rotate(daemon, body or proxy_certificate.RotateRequest())


@router.delete("/v1/cluster/certificates/{name}", **doc(Certificates, 400))
async def delete_cert(name: str, daemon: Daemon) -> dict[str, Any]:
    """Remove a user's certificate: the nodes issue the shards' again (`proxy`), or serve their own
    (`api`, `cm`, `metrics_exporter`)."""
    return await proxy_certificate.delete_cert(daemon, name)


@router.get("/v1/license", **doc(License))
async def get_license(daemon: Daemon) -> dict[str, Any]:
    return license_view(await daemon.state())


@router.put("/v1/license", **doc(License, 400, 413))
async def put_license(body: LicenseUpdate, daemon: Daemon) -> dict[str, Any]:
    return await operations.put_license(daemon, body)
