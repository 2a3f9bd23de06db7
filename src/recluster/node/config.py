"""The node daemon's settings (from flags and RECLUSTER_NODE_* environment variables)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from recluster.api.ports import API_PORT as DEFAULT_API_PORT
from recluster.api.ports import CCS_PORT as DEFAULT_CCS_PORT
from recluster.api.ports import METRICS_PORT as DEFAULT_METRICS_PORT
from recluster.api.ports import SENTINEL_PORT as DEFAULT_SENTINEL_PORT
from recluster.api.ports import SENTINEL_TLS_PORT as DEFAULT_SENTINEL_TLS_PORT
from recluster.api.rec import DEFAULT_RESTART_GRACE_S, DEFAULT_SLAVE_HA_GRACE_PERIOD_S
from recluster.node.engines import EngineTable, discover

DEFAULT_DOWN_AFTER_MS = 2500  # a crashed node's masters fail over in ~4.5 s on the local cluster


@dataclass(frozen=True)
class NodeConfig:
    addr: str  # the address every listener binds (only this one)
    data_dir: Path
    name: str = ""  # stable host name other nodes and clients use; defaults to addr
    api_port: int = DEFAULT_API_PORT
    sentinel_port: int = DEFAULT_SENTINEL_PORT
    sentinel_tls_port: int = DEFAULT_SENTINEL_TLS_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    ccs_port: int = DEFAULT_CCS_PORT
    tls_dir: Path | None = None  # holds cert.pem/key.pem; generated into data_dir/tls when unset
    # the DNS domain of the database Services (in Kubernetes `<namespace>.svc.<cluster domain>`): the
    # database certificates carry `<db>.<namespace>` and the longer forms; empty outside Kubernetes
    service_domain: str = ""
    credentials_file: Path | None = None
    # Sentinel's down-after-milliseconds for every database (the CCS: one second more). The trade-off
    # (docs/node-daemon.md, "Failure detection"): shorter detects a crashed node sooner, but a shard
    # that stalls this long (a fork on a loaded host, a slow disk) is failed over although alive.
    down_after_ms: int = DEFAULT_DOWN_AFTER_MS
    # how long a node lost without notice may be down before its replicas move (the cluster policy's
    # slave_ha_grace_period replaces it once set), and how long at least for a node that announced a
    # planned restart (SIGTERM): see placement.nodes_to_evacuate
    replica_move_grace_s: float = float(DEFAULT_SLAVE_HA_GRACE_PERIOD_S)
    restart_grace_s: float = float(DEFAULT_RESTART_GRACE_S)
    redis_server: str = "/usr/bin/redis-server"
    redis_sentinel: str = "/usr/bin/redis-sentinel"
    # the configuration store's redis-server ("": redis_server). The image pins it to its oldest engine:
    # while a REC rolls to a newer image, a CCS replica on an older engine cannot load a newer master's
    # RDB (Redis 7.0 refuses 8.0's format 12), and the CCS has no upgrade order of its own yet
    ccs_server: str = ""
    # the database engines' server binaries (engines.py); empty: discovered beside redis_server
    engines: tuple[str, ...] = ()
    tick_s: float = 0.5
    # the leader's period once everything is settled (`reconcile.settled`): events and REST writes
    # still wake it at once; looking at 200 shards twice a second was most of its CPU at rest
    settled_tick_s: float = 2.0
    # for tests only: every scheduled backup's interval in seconds instead of the database's
    # backup_interval (an hour at least); 0: the databases' own
    test_backup_interval_s: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def node_name(self) -> str:
        return self.name or self.addr

    def sentinel(self, tls: bool) -> int:
        """The port of this node's sentinel for TLS (or plaintext) databases."""
        return self.sentinel_tls_port if tls else self.sentinel_port

    @property
    def ccs_binary(self) -> str:
        return self.ccs_server or self.redis_server

    @property
    def cert_dir(self) -> Path:
        return self.tls_dir or self.data_dir / "tls"

    @property
    def failover_timeout_ms(self) -> int:
        # Sentinel retries a failed election after 2x this; when two masters fail together (a node
        # with several masters), split votes are common, so keep the retry short
        return max(3000, self.down_after_ms)

    @property
    def ccs_down_after_ms(self) -> int:
        # one second later than the databases: their failovers (what clients wait for) are elected
        # first instead of splitting the sentinels' votes with the CCS's
        return self.down_after_ms + 1000


def read_credentials_file(path: Path) -> tuple[str, str]:
    """(username, password) from a directory holding `username` and `password` files (a mounted
    Kubernetes secret) or from a JSON file {"username": ..., "password": ...}."""
    if path.is_dir():
        return (path / "username").read_text().strip(), (path / "password").read_text().strip()
    data = json.loads(path.read_text())
    return str(data["username"]), str(data["password"])


def engine_table(cfg: NodeConfig) -> EngineTable:
    """The engines this node runs databases on (discovered once per process)."""
    return discover(cfg.redis_server, cfg.engines)
