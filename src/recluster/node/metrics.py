"""Prometheus metrics on port 8070: `bdb_*`, `node_*` and `redis_*` families with `cluster`, `bdb` and
`node` labels, read from the INFO of the shards on this node at scrape time.

Each node reports its own shards (`redis_*`) and, for databases whose master shard it holds, the
database (`bdb_*`); scraping every node gives the whole cluster without double counting.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from recluster.certificates import not_after
from recluster.clients.redis_retry import no_retry_sync
from recluster.node.ccs import STATE_KEY
from recluster.node.config import NodeConfig
from recluster.node.database_tls import node_client_tls, shard_files
from recluster.node.identity import Membership
from recluster.node.models import BdbRecord, ClusterState
from recluster.node.shards import shard_dir
from recluster.node.stats import keyspace

log = logging.getLogger(__name__)

REDIS_GAUGES = {
    "used_memory": "used_memory", "maxmemory": "maxmemory", "connected_clients": "connected_clients",
    "connected_slaves": "connected_slaves", "master_repl_offset": "master_repl_offset",
    "master_sync_in_progress": "master_sync_in_progress", "evicted_keys": "evicted_keys",
    "expired_keys": "expired_keys", "keyspace_read_hits": "keyspace_hits",
    "keyspace_read_misses": "keyspace_misses", "total_commands_processed": "total_commands_processed",
    "total_net_input_bytes": "total_net_input_bytes", "total_net_output_bytes": "total_net_output_bytes",
    "rdb_bgsave_in_progress": "rdb_bgsave_in_progress", "aof_rewrite_in_progress": "aof_rewrite_in_progress",
    "mem_fragmentation_ratio": "mem_fragmentation_ratio",
    "instantaneous_ops_per_sec": "instantaneous_ops_per_sec",
}
BDB_GAUGES = {
    "conns": "connected_clients", "used_memory": "used_memory", "instantaneous_ops_per_sec":
    "instantaneous_ops_per_sec", "total_req": "total_commands_processed", "read_hits": "keyspace_hits",
    "read_misses": "keyspace_misses", "evicted_objects": "evicted_keys", "expired_objects": "expired_keys",
    "ingress_bytes": "total_net_input_bytes", "egress_bytes": "total_net_output_bytes",
    "total_connections_received": "total_connections_received", "mem_frag_ratio": "mem_fragmentation_ratio",
    "pubsub_channels": "pubsub_channels", "pubsub_patterns": "pubsub_patterns",
}


def _f(info: dict[str, Any], key: str) -> float:
    try:
        return float(info.get(key, 0) or 0)
    except (TypeError, ValueError):
        return 0.0


class ClusterCollector(Collector):
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        # a client per shard, kept across scrapes (by port, password, TLS): a TLS connection costs
        # ~40 ms of CPU to set up, and a scrape of 100 TLS shards made 100 of them
        self._shard_clients: dict[tuple[int, str | None, bool], redis.Redis] = {}

    def _shard_client(self, bdb: BdbRecord) -> redis.Redis:
        key = (bdb.port, bdb.authentication_redis_pass, bdb.tls())
        client = self._shard_clients.get(key)
        if client is None:
            client = redis.Redis(host=self.cfg.addr, port=bdb.port, password=bdb.authentication_redis_pass,
                                 socket_timeout=1, socket_connect_timeout=1, decode_responses=True,
                                 retry=no_retry_sync(),
                                 **(node_client_tls(self.cfg.data_dir) if bdb.tls() else {}))
            self._shard_clients[key] = client
        return client

    def _forget_clients(self, keep: set[tuple[int, str | None, bool]]) -> None:
        for key in [k for k in self._shard_clients if k not in keep]:
            self._shard_clients.pop(key).close()

    def _state(self) -> tuple[ClusterState | None, Membership | None]:
        membership = Membership.load(self.cfg.data_dir)
        if membership is None:
            return None, None
        client = redis.Redis(host=self.cfg.addr, port=self.cfg.ccs_port, password=membership.ccs_password,
                             socket_timeout=1, socket_connect_timeout=1, retry=no_retry_sync())
        try:
            raw = client.get(STATE_KEY)
        except RedisError:
            return None, membership
        finally:
            client.close()
        if not isinstance(raw, bytes | str):
            return None, membership
        return ClusterState.model_validate_json(raw), membership

    def collect(self) -> Iterable[Metric]:
        state, membership = self._state()
        cluster = state.cluster.name if state else ""
        node_uid = str(membership.node_uid) if membership else ""
        node_up = GaugeMetricFamily("node_up", "1 when the node belongs to a cluster and answers",
                                    labels=["cluster", "node"])
        node_up.add_metric([cluster, node_uid], 1.0 if state else 0.0)
        yield node_up
        yield from self._node_metrics(cluster, node_uid)
        if state is None or membership is None:
            return
        redis_families = {name: GaugeMetricFamily(f"redis_{name}", f"INFO {key} of the shard",
                                                  labels=["cluster", "bdb", "node", "role", "shard"])
                          for name, key in REDIS_GAUGES.items()}
        redis_up = GaugeMetricFamily("redis_up", "1 when the shard answers", labels=["cluster", "bdb", "node",
                                                                                     "role", "shard"])
        keys_family = GaugeMetricFamily("redis_db0_keys", "keys in the shard",
                                        labels=["cluster", "bdb", "node", "role", "shard"])
        link = GaugeMetricFamily("redis_master_link_status", "1 when a replica's link to its master is up",
                                 labels=["cluster", "bdb", "node", "role", "shard"])
        bdb_families = {name: GaugeMetricFamily(f"bdb_{name}", f"database {name} (from the master's INFO)",
                                                labels=["cluster", "bdb"]) for name in BDB_GAUGES}
        bdb_up = GaugeMetricFamily("bdb_up", "1 when the database's master shard answers",
                                   labels=["cluster", "bdb"])
        bdb_keys = GaugeMetricFamily("bdb_no_of_keys", "keys in the database", labels=["cluster", "bdb"])
        bdb_limit = GaugeMetricFamily("bdb_memory_limit", "memory_size of the database",
                                      labels=["cluster", "bdb"])
        bdb_shards = GaugeMetricFamily("bdb_shards_used", "shards of the database", labels=["cluster", "bdb"])
        cert_expiry = GaugeMetricFamily("redis_tls_cert_expiration_seconds",
                                        "seconds until the TLS certificate the shard serves expires (renewed "
                                        "30 days before)", labels=["cluster", "bdb", "node", "role", "shard"])
        used: set[tuple[int, str | None, bool]] = set()
        for shard in state.shards_on(membership.node_uid):
            bdb = state.bdbs.get(shard.bdb_uid)
            if bdb is None:
                continue
            used.add((bdb.port, bdb.authentication_redis_pass, bdb.tls()))
            labels = [cluster, str(bdb.uid), node_uid, shard.role, str(shard.uid)]
            served = shard_files(shard_dir(self.cfg.data_dir, bdb.uid)).cert
            if bdb.tls() and served.exists():
                cert_expiry.add_metric(labels, not_after(served.read_bytes()).timestamp() - time.time())
            try:
                info: dict[str, Any] = self._shard_client(bdb).info("all")
            except RedisError:
                info = {}
            redis_up.add_metric(labels, 1.0 if info else 0.0)
            if not info:
                continue
            for name, key in REDIS_GAUGES.items():
                redis_families[name].add_metric(labels, _f(info, key))
            keys, _ = keyspace(info)
            keys_family.add_metric(labels, keys)
            link.add_metric(labels, 1.0 if info.get("master_link_status") == "up" else 0.0)
            if info.get("role") == "master":
                bdb_labels = [cluster, str(bdb.uid)]
                bdb_up.add_metric(bdb_labels, 1.0)
                for name, key in BDB_GAUGES.items():
                    bdb_families[name].add_metric(bdb_labels, _f(info, key))
                bdb_keys.add_metric(bdb_labels, keys)
                bdb_limit.add_metric(bdb_labels, float(bdb.memory_size))
                bdb_shards.add_metric(bdb_labels, float(len(state.shards_of(bdb.uid))))
        self._forget_clients(used)
        yield redis_up
        yield cert_expiry
        yield keys_family
        yield link
        yield from redis_families.values()
        yield bdb_up
        yield bdb_keys
        yield bdb_limit
        yield bdb_shards
        yield from bdb_families.values()

    def _node_metrics(self, cluster: str, node_uid: str) -> Iterable[Metric]:
        labels = [cluster, node_uid]
        meminfo = {}
        try:
            for line in open("/proc/meminfo").read().splitlines():  # noqa: SIM115
                key, _, rest = line.partition(":")
                meminfo[key] = float(rest.split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        free = GaugeMetricFamily("node_free_memory", "free memory (bytes)", labels=["cluster", "node"])
        free.add_metric(labels, meminfo.get("MemFree", 0.0))
        yield free
        avail = GaugeMetricFamily("node_available_memory", "available memory (bytes)",
                                  labels=["cluster", "node"])
        avail.add_metric(labels, meminfo.get("MemAvailable", 0.0))
        yield avail
        disk = shutil.disk_usage(self.cfg.data_dir) if self.cfg.data_dir.exists() else None
        storage = GaugeMetricFamily("node_persistent_storage_free", "free bytes in the data directory",
                                    labels=["cluster", "node"])
        storage.add_metric(labels, float(disk.free) if disk else 0.0)
        yield storage
        load = GaugeMetricFamily("node_load_average", "1-minute load average", labels=["cluster", "node"])
        load.add_metric(labels, os.getloadavg()[0])
        yield load
        uptime = GaugeMetricFamily("node_uptime_seconds", "seconds since the daemon started",
                                   labels=["cluster", "node"])
        uptime.add_metric(labels, time.time() - STARTED)
        yield uptime
        cert = self.cfg.cert_dir / "cert.pem"
        if cert.exists():
            from recluster.node.tls import certificate_expiry

            expiry = GaugeMetricFamily("node_cert_expiration_seconds",
                                       "seconds until the API certificate expires",
                                       labels=["cluster", "node"])
            expiry.add_metric(labels, certificate_expiry(cert) - time.time())
            yield expiry


STARTED = time.time()
