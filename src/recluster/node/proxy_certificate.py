"""The REST calls on the databases' certificates. PUT /v1/cluster/update_cert and DELETE
/v1/cluster/certificates/proxy: a user's certificate for the databases, checked
(recluster.certificates.check_served_certificate) before it is stored in the cluster state, where
every node picks it up for its TLS shards (node/database_tls.py). Nothing is stored when the check
fails: the 400 names what is wrong (never the key). POST /v1/cluster/certificates/rotate starts a
rotation of the cluster's database CA (node/ca_rotation.py)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from recluster.certificates import CertificateRefused, check_served_certificate
from recluster.node.ca_rotation import DEFAULT_OVERLAP_S
from recluster.node.daemon import NodeDaemon
from recluster.node.database_tls import new_ca
from recluster.node.errors import ApiError
from recluster.node.model_base import Strict
from recluster.node.models import ClusterState
from recluster.node.schemas import CertificateUpdate
from recluster.node.views import certificates_view

PROXY = "proxy"
OTHERS = ("api", "cm", "syncer", "metrics_exporter")


def _only_proxy(name: str) -> None:
    if name != PROXY:
        keeps = "keeps the cluster's own" if name in OTHERS else "is not a certificate of the cluster"
        raise ApiError(400, "unsupported_certificate",
                       f"certificate {name!r} {keeps}: only 'proxy' (the databases') can be set",
                       field="name")


async def update_cert(daemon: NodeDaemon, body: CertificateUpdate) -> dict[str, Any]:
    _only_proxy(body.name)
    try:
        checked = check_served_certificate(body.certificate, body.key, body.ca)
    except CertificateRefused as exc:
        raise ApiError(400, "invalid_certificate", f"the proxy certificate is refused: {exc}",
                       field="certificate") from None

    def change(state: ClusterState) -> dict[str, Any]:
        cluster = state.cluster
        cluster.proxy_chain, cluster.proxy_key = checked.chain, checked.key
        cluster.proxy_anchors = checked.anchors
        return certificates_view(state)

    return await daemon.write(change, "store the databases' certificate")


async def delete_cert(daemon: NodeDaemon, name: str) -> dict[str, Any]:
    """The databases go back to the certificates their nodes issue from the cluster's database CA."""
    _only_proxy(name)

    def change(state: ClusterState) -> dict[str, Any]:
        state.cluster.proxy_chain = state.cluster.proxy_key = state.cluster.proxy_anchors = ""
        return certificates_view(state)

    return await daemon.write(change, "remove the databases' certificate")


class RotateRequest(Strict):
    """POST /v1/cluster/certificates/rotate (Redis Enterprise's call, no body needed)."""

    overlap_seconds: int = Field(default=DEFAULT_OVERLAP_S, ge=0, le=30 * 86400,
                                 description="recluster: how long the next CA is trusted before it "
                                 "signs (clients read ca.crt again meanwhile)")


async def rotate(daemon: NodeDaemon, request: RotateRequest) -> dict[str, Any]:
    """Start a rotation: 409 while one is under way (its next CA not yet signing)."""
    ca = new_ca((await daemon.state()).cluster.name)

    def change(state: ClusterState) -> dict[str, Any]:
        cluster = state.cluster
        if cluster.database_ca_next_cert:
            raise ApiError(409, "rotation_in_progress",
                           "a rotation of the database CA is under way: its next CA signs from "
                           f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(cluster.database_ca_next_at))}")
        cluster.database_ca_next_cert, cluster.database_ca_next_key = ca.certificate, ca.key
        cluster.database_ca_next_at = time.time() + request.overlap_seconds
        return certificates_view(state)

    return await daemon.write(change, "start a rotation of the database CA")
