"""How a node's REST API and metrics are checked by those that call them from another node (the node
daemon joining or following its peers, the console reading the nodes' metrics)."""

from __future__ import annotations

import ssl
from pathlib import Path


def peer_verification(cert_dir: Path) -> ssl.SSLContext | bool:
    """How this node checks the other nodes' REST API: against the cluster CA when it has one
    (`ca.pem` beside its certificate, as the operator mounts it; peers are addressed by the names
    their certificates carry). A standalone node with a self-signed certificate has no trust
    anchor: then the join is protected by the cluster's credentials alone (docs/node-daemon.md)."""
    ca = cert_dir / "ca.pem"
    if not ca.is_file():
        return False
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
