"""Prometheus metrics on port 8070, read at scrape time from the state this node holds (its copy of
the CCS) and from the INFO of the shards on this node. The families and their names are
metric_families.py, what the state and INFO make of them metric_samples.py (both pure);
`docs/monitoring.md` lists every family."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable
from typing import Any

import redis
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from recluster.certificates import not_after
from recluster.clients.redis_retry import no_retry_sync
from recluster.node.ccs import STATE_KEY
from recluster.node.config import NodeConfig
from recluster.node.database_tls import node_client_tls, shard_files
from recluster.node.identity import Membership
from recluster.node.metric_families import NODE_FAMILIES
from recluster.node.metric_samples import cluster_view, shard_and_bdb_view
from recluster.node.records import BdbRecord, ClusterState
from recluster.node.shards import shard_dir

log = logging.getLogger(__name__)


class ClusterCollector(Collector):
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        # a client per shard, kept across scrapes (by port, password, TLS): a TLS connection costs
        # ~40 ms of CPU to set up, and a scrape of 100 TLS shards made 100 of them
        self._shard_clients: dict[tuple[int, str | None, bool], redis.Redis] = {}

    def _shard_client(self, bdb: BdbRecord) -> redis.Redis:
        user, password = bdb.login("control")
        key = (bdb.port, password, bdb.tls())
        client = self._shard_clients.get(key)
        if client is None:
            client = redis.Redis(host=self.cfg.addr, port=bdb.port, username=user,
                                 password=password,
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
        cluster = state.cluster.name if state else membership.cluster_name if membership else ""
        node_uid = str(membership.node_uid) if membership else ""
        yield from self._node_metrics(cluster, node_uid, up=state is not None)
        if state is None or membership is None:
            return
        yield from cluster_view(state, time.time())
        infos: dict[int, dict[str, Any]] = {}
        cert_expiry: dict[int, float] = {}
        used: set[tuple[int, str | None, bool]] = set()
        for shard in state.shards_on(membership.node_uid):
            bdb = state.bdbs.get(shard.bdb_uid)
            if bdb is None:
                continue
            used.add((bdb.port, bdb.login("control")[1], bdb.tls()))
            served = shard_files(shard_dir(self.cfg.data_dir, bdb.uid)).cert
            if bdb.tls() and served.exists():
                cert_expiry[shard.uid] = not_after(served.read_bytes()).timestamp() - time.time()
            try:
                info: dict[str, Any] = self._shard_client(bdb).info("all")
            except RedisError:
                continue
            if info:
                infos[shard.uid] = info
        self._forget_clients(used)
        yield from shard_and_bdb_view(state, membership.node_uid, infos, cert_expiry)

    def _node_metrics(self, cluster: str, node_uid: str, up: bool) -> Iterable[Metric]:
        labels = [cluster, node_uid]
        meminfo = {}
        try:
            for line in open("/proc/meminfo").read().splitlines():  # noqa: SIM115
                key, _, rest = line.partition(":")
                meminfo[key] = float(rest.split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        disk = shutil.disk_usage(self.cfg.data_dir) if self.cfg.data_dir.exists() else None
        values = {
            "node_up": 1.0 if up else 0.0,
            "node_free_memory": meminfo.get("MemFree", 0.0),
            "node_available_memory": meminfo.get("MemAvailable", 0.0),
            "node_persistent_storage_free": float(disk.free) if disk else 0.0,
            "recluster_node_load1": os.getloadavg()[0],
            "recluster_node_uptime_seconds": time.time() - STARTED,
        }
        cert = self.cfg.cert_dir / "cert.pem"
        if cert.exists():
            from recluster.node.tls import certificate_expiry

            values["node_cert_expiration_seconds"] = certificate_expiry(cert) - time.time()
        for family in NODE_FAMILIES:
            if family.name in values:
                made = family.make()
                made.add_metric(labels, values[family.name])
                yield made


STARTED = time.time()
