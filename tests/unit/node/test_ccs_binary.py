"""The configuration store runs its own redis-server when one is configured (the image pins it to Redis 7.0
so a rolling image change never puts a 7.0 CCS replica under an 8.0 master), else the node's."""

from __future__ import annotations

from pathlib import Path

import pytest

from recluster.node.ccs import CcsServer
from recluster.node.config import NodeConfig

pytestmark = pytest.mark.unit


def test_the_ccs_runs_the_nodes_redis_server_by_default(tmp_path: Path) -> None:
    cfg = NodeConfig(addr="127.0.0.1", data_dir=tmp_path, redis_server="/x/redis-server")
    assert CcsServer(cfg).process.argv[0] == "/x/redis-server"


def test_a_configured_ccs_server_is_the_ccs_binary_and_only_its(tmp_path: Path) -> None:
    cfg = NodeConfig(addr="127.0.0.1", data_dir=tmp_path, redis_server="/x/redis-server",
                     ccs_server="/opt/engines/redis-7.0/bin/redis-server")
    assert CcsServer(cfg).process.argv == ["/opt/engines/redis-7.0/bin/redis-server",
                                           str(tmp_path / "ccs" / "ccs.conf")]
    assert cfg.redis_server == "/x/redis-server"  # the databases' default engine is not changed
