"""Bootstrap: answered without credentials until the node belongs to a cluster."""

from __future__ import annotations

import os
from typing import Any, Literal

from fastapi import APIRouter, Request

from recluster import __version__
from recluster.node.bootstrap import total_memory
from recluster.node.deps import Daemon, check_credentials
from recluster.node.request_models import BootstrapRequest
from recluster.node.schemas import Bootstrap, Empty, doc

router = APIRouter(tags=["bootstrap"])


@router.get("/v1/bootstrap", **doc(Bootstrap, 401, 406, 503))
async def get_bootstrap(request: Request, daemon: Daemon) -> dict[str, Any]:
    if daemon.bootstrapped:
        await check_credentials(daemon, request.headers.get("authorization"))
    cfg = daemon.cfg
    return {
        "bootstrap_status": daemon.bootstrap.public(),
        "local_node_info": {
            "uid": daemon.node_uid,
            "name": cfg.node_name, "addr": cfg.addr, "software_version": __version__,
            "cores": os.cpu_count() or 1, "total_memory": total_memory(),
            "persistent_storage_path": str(cfg.data_dir), "ephemeral_storage_path": str(cfg.data_dir),
            "available_addrs": [{"address": cfg.addr, "format": "ipv4", "if_name": "lo", "private": True}],
        },
    }


@router.post("/v1/bootstrap/{action}", **doc(Empty, 400, 409, 413))
async def post_bootstrap(action: Literal["create_cluster", "join_cluster"], body: BootstrapRequest,
                         daemon: Daemon) -> dict[str, Any]:
    daemon.begin_bootstrap(action, body)
    return {}
