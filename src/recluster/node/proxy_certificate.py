"""The REST calls on the cluster's certificates. PUT /v1/cluster/update_cert and DELETE
/v1/cluster/certificates/<name>: a user's certificate for the databases (`proxy`) or for the nodes'
HTTPS servers (`api`, `cm`, `metrics_exporter`, node/served_tls.py), checked
(recluster.certificates.check_served_certificate) before it is stored in the cluster state, where
every node picks it up for its TLS shards (node/database_tls.py). Nothing is stored when the check
fails: the 400 names what is wrong (never the key). POST /v1/cluster/certificates/rotate starts a
rotation of the cluster's database CA (node/ca_rotation.py)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from recluster.certificates import CertificateRefused, UserCertificate, check_served_certificate
from recluster.node.ca_rotation import DEFAULT_OVERLAP_S
from recluster.node.daemon import NodeDaemon
from recluster.node.database_tls import new_ca
from recluster.node.errors import ApiError
from recluster.node.model_base import Strict
from recluster.node.records import ClusterState
from recluster.node.schemas import CertificateUpdate
from recluster.node.served_tls import API, CONSOLE, METRICS, SERVER_CERTIFICATES
from recluster.node.views import certificates_view

PROXY = "proxy"
SETTABLE = (PROXY, *SERVER_CERTIFICATES)
WHAT = {PROXY: "the databases'", API: "the REST API's (9443)", CONSOLE: "the console's (8443)",
        METRICS: "the metrics endpoint's (8070)"}


def _settable(name: str) -> None:
    if name not in SETTABLE:
        keeps = "keeps the cluster's own" if name == "syncer" else "is not a certificate of the cluster"
        raise ApiError(400, "unsupported_certificate",
                       f"certificate {name!r} {keeps}: one of {', '.join(SETTABLE)} can be set", field="name")


async def update_cert(daemon: NodeDaemon, body: CertificateUpdate) -> dict[str, Any]:
    """`proxy`: every TLS shard serves it (node/database_tls.py); `api`, `cm`, `metrics_exporter`:
    every node's HTTPS server of that name serves it to new connections (node/served_tls.py)."""
    _settable(body.name)
    try:
        checked = check_served_certificate(body.certificate, body.key, body.ca)
    except CertificateRefused as exc:
        raise ApiError(400, "invalid_certificate", f"the {body.name} certificate is refused: {exc}",
                       field="certificate") from None

    def change(state: ClusterState) -> dict[str, Any]:
        cluster = state.cluster
        if body.name == PROXY:
            cluster.proxy_chain, cluster.proxy_key = checked.chain, checked.key
            cluster.proxy_anchors = checked.anchors
        else:
            cluster.served_certificates = {
                **cluster.served_certificates,
                body.name: UserCertificate(checked.chain, checked.key, checked.anchors)}
        return certificates_view(state)

    return await daemon.write(change, f"store {WHAT[body.name]} certificate")


async def delete_cert(daemon: NodeDaemon, name: str) -> dict[str, Any]:
    """Back to the cluster's own: the databases to the certificates their nodes issue from the
    database CA, an HTTPS server to its node's certificate."""
    _settable(name)

    def change(state: ClusterState) -> dict[str, Any]:
        if name == PROXY:
            state.cluster.proxy_chain = state.cluster.proxy_key = state.cluster.proxy_anchors = ""
        else:
            state.cluster.served_certificates = {
                key: value for key, value in state.cluster.served_certificates.items() if key != name}
        return certificates_view(state)

    return await daemon.write(change, f"remove {WHAT[name]} certificate")


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
