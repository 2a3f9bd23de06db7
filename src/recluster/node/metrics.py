"""Prometheus metrics on port 8070, read at scrape time from the state this node holds (its copy of
the CCS) and from the INFO of the shards on this node. `docs/monitoring.md` lists every family.

Names: a Redis Enterprise name where Redis Enterprise has one with the same meaning (`bdb_*` and
`node_*` of its v1 metrics, `redis_server_*` of its v2 shard metrics), `recluster_*` for the rest.
None equals a name node_exporter or redis_exporter exports (RE's v1 shard names, `redis_up`,
`redis_connected_clients`, ..., do: that is why the shards use RE's v2 names).

Who reports what, so that scraping every node gives the cluster without double counting:
- `node_*`, `recluster_node_*`: each node about itself;
- `redis_server_*`, `recluster_shard_*`: each node about the shards it holds;
- `bdb_*`, `recluster_bdb_*`: the node holding a database's master shard;
- `recluster_cluster_*`: every node, from its copy of the cluster state (the same series on each
  node that is in sync: aggregate with `max by` / `min by`). They still say a node is down when
  that node's own endpoint cannot be scraped.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from recluster.certificates import not_after
from recluster.clients.redis_retry import no_retry_sync
from recluster.node.ccs import STATE_KEY
from recluster.node.config import NodeConfig
from recluster.node.database_tls import node_client_tls, shard_files
from recluster.node.identity import Membership
from recluster.node.models import BdbRecord, ClusterRecord, ClusterState
from recluster.node.shards import shard_dir
from recluster.node.stats import keyspace

log = logging.getLogger(__name__)

NODE = ("cluster", "node")
SHARD = ("cluster", "bdb", "node", "role", "shard")
BDB = ("cluster", "bdb")


@dataclass(frozen=True)
class Family:
    """One metric family: its exposed name (a counter's ends in `_total`), type, labels and meaning."""

    name: str
    kind: str  # "gauge" or "counter"
    labels: tuple[str, ...]
    help: str

    def make(self) -> GaugeMetricFamily | CounterMetricFamily:
        if self.kind == "counter":
            # prometheus_client appends `_total` to a counter family's name
            return CounterMetricFamily(self.name.removesuffix("_total"), self.help, labels=list(self.labels))
        return GaugeMetricFamily(self.name, self.help, labels=list(self.labels))


def _gauge(name: str, labels: tuple[str, ...], text: str) -> Family:
    return Family(name, "gauge", labels, text)


def _counter(name: str, labels: tuple[str, ...], text: str) -> Family:
    return Family(name, "counter", labels, text)


# ---- the node itself ----------------------------------------------------------------------------

NODE_UP = _gauge("node_up", NODE, "1 when the node belongs to a cluster and reads the cluster state (0: it "
                 "has not joined one, or its copy of the state cannot be read)")
NODE_FAMILIES = (
    NODE_UP,
    _gauge("node_free_memory", NODE, "free memory (bytes; MemFree of /proc/meminfo)"),
    _gauge("node_available_memory", NODE, "memory available for new work (bytes; MemAvailable of "
           "/proc/meminfo)"),
    _gauge("node_persistent_storage_free", NODE, "free bytes on the node's data volume"),
    _gauge("node_cert_expiration_seconds", NODE, "seconds until the certificate of the node's REST "
           "API, console and metrics endpoint expires"),
    _gauge("recluster_node_load1", NODE, "1-minute load average of the host the node runs on"),
    _gauge("recluster_node_uptime_seconds", NODE, "seconds since the node daemon started"),
)

# ---- the cluster, as this node's copy of the state says ------------------------------------------

CLUSTER_NODES = _gauge("recluster_cluster_nodes", ("cluster",), "nodes in the cluster")
CLUSTER_QUORUM = _gauge("recluster_cluster_quorum", ("cluster",),
                        "nodes that make a majority of the cluster (what it needs to act)")
CLUSTER_NODE_REACHABLE = _gauge("recluster_cluster_node_reachable", ("cluster", "node", "name"),
                                "1 when the cluster's leader reached the node at its last look, 0 when "
                                "it did not (the node is down)")
CLUSTER_BDB_INFO = _gauge("recluster_cluster_bdb_info", ("cluster", "bdb", "name", "replication"),
                          "1 for each database of the cluster: its name and whether it is replicated")
CLUSTER_CERT = _gauge("recluster_cluster_cert_expiration_seconds", ("cluster", "name"),
                      "seconds until a certificate the cluster keeps expires: one a user gave "
                      "(`proxy` for the databases, `api`, `cm`, `metrics_exporter` for the nodes' HTTPS "
                      "servers) and the cluster's own database CA (`database_ca`, `database_ca_next` "
                      "during a rotation)")
# scheduled backups (node/backup_runs.py): from the state, so any node reports them and a new leader
# carries them on
CLUSTER_BACKUP_SUCCESS = _gauge("recluster_cluster_bdb_backup_last_success_timestamp_seconds",
                                ("cluster", "bdb"),
                                "when the database's last scheduled backup succeeded (Unix time; absent "
                                "before the first)")
CLUSTER_BACKUP_FAILING = _gauge("recluster_cluster_bdb_backup_failures", ("cluster", "bdb"),
                                "scheduled backups of the database that failed since its last success "
                                "(0: the last one succeeded); only databases with scheduled backups")
CLUSTER_BACKUP_FAILURES = _counter("recluster_cluster_bdb_backup_failures_total", ("cluster", "bdb"),
                                   "scheduled backups of the database that failed, ever")
CLUSTER_FAMILIES = (CLUSTER_NODES, CLUSTER_QUORUM, CLUSTER_NODE_REACHABLE, CLUSTER_BDB_INFO, CLUSTER_CERT,
                    CLUSTER_BACKUP_SUCCESS, CLUSTER_BACKUP_FAILING, CLUSTER_BACKUP_FAILURES)

# ---- the shards on this node (Redis Enterprise's v2 names: INFO field) ---------------------------

SHARD_UP = _gauge("redis_server_up", SHARD, "1 when the shard answers INFO")
SHARD_INFO = {
    "redis_server_used_memory": "used_memory",
    "redis_server_maxmemory": "maxmemory",
    "redis_server_connected_clients": "connected_clients",
    "redis_server_blocked_clients": "blocked_clients",
    "redis_server_connected_slaves": "connected_slaves",
    "redis_server_master_repl_offset": "master_repl_offset",
    "redis_server_master_sync_in_progress": "master_sync_in_progress",
    "redis_server_evicted_keys": "evicted_keys",
    "redis_server_expired_keys": "expired_keys",
    "redis_server_keyspace_read_hits": "keyspace_hits",
    "redis_server_keyspace_read_misses": "keyspace_misses",
    "redis_server_total_commands_processed": "total_commands_processed",
    "redis_server_total_connections_received": "total_connections_received",
    "redis_server_total_net_input_bytes": "total_net_input_bytes",
    "redis_server_total_net_output_bytes": "total_net_output_bytes",
    "redis_server_rdb_bgsave_in_progress": "rdb_bgsave_in_progress",
    "redis_server_aof_rewrite_in_progress": "aof_rewrite_in_progress",
    "redis_server_mem_fragmentation_ratio": "mem_fragmentation_ratio",
}
SHARD_KEYS = _gauge("redis_server_db_keys", SHARD, "keys in the shard")
SHARD_LINK = _gauge("redis_server_master_link_status", SHARD, "1 when a replica's link to its master is up")
SHARD_OPS = _gauge("recluster_shard_instantaneous_ops_per_sec", SHARD,
                   "commands per second the shard processes (INFO instantaneous_ops_per_sec)")
SHARD_CERT = _gauge("recluster_shard_cert_expiration_seconds", SHARD,
                    "seconds until the certificate a TLS shard serves expires (renewed 30 days before)")
SHARD_FAMILIES = (
    SHARD_UP,
    *(_gauge(name, SHARD, f"INFO {key} of the shard") for name, key in SHARD_INFO.items()),
    SHARD_KEYS, SHARD_LINK, SHARD_OPS, SHARD_CERT,
)

# ---- the databases whose master is on this node ---------------------------------------------------

BDB_UP = _gauge("bdb_up", BDB, "1 when the database's master shard answers as a master, 0 when it does not")
# Redis Enterprise's gauges that one master's INFO answers with the same meaning: name -> INFO field
BDB_INFO = {
    "bdb_conns": "connected_clients",
    "bdb_used_memory": "used_memory",
    "bdb_instantaneous_ops_per_sec": "instantaneous_ops_per_sec",
    "bdb_total_req": "instantaneous_ops_per_sec",
    "bdb_mem_frag_ratio": "mem_fragmentation_ratio",
    "bdb_pubsub_channels": "pubsub_channels",
    "bdb_pubsub_patterns": "pubsub_patterns",
}
BDB_RATES = {  # RE's rates in bytes per second, from INFO's kilobytes per second
    "bdb_ingress_bytes": "instantaneous_input_kbps",
    "bdb_egress_bytes": "instantaneous_output_kbps",
}
BDB_KEYS = _gauge("bdb_no_of_keys", BDB, "keys in the database")
BDB_LIMIT = _gauge("bdb_memory_limit", BDB, "the database's memory limit (memory_size, bytes)")
BDB_SHARDS = _gauge("bdb_shards_used", BDB, "shards of the database")
# cumulative counts of the master shard (they start again from the new master's after a failover)
BDB_COUNTERS = {
    "recluster_bdb_read_hits_total": "keyspace_hits",
    "recluster_bdb_read_misses_total": "keyspace_misses",
    "recluster_bdb_evicted_objects_total": "evicted_keys",
    "recluster_bdb_expired_objects_total": "expired_keys",
    "recluster_bdb_ingress_bytes_total": "total_net_input_bytes",
    "recluster_bdb_egress_bytes_total": "total_net_output_bytes",
    "recluster_bdb_connections_received_total": "total_connections_received",
}
BDB_COMMANDS = _counter("recluster_bdb_commands_total", BDB,
                        "commands the master shard ran (INFO commandstats)")
BDB_COMMAND_SECONDS = _counter("recluster_bdb_commands_duration_seconds_total", BDB,
                               "seconds the master shard spent running commands (INFO commandstats); "
                               "divided by recluster_bdb_commands_total: the mean latency")
BDB_FAMILIES = (
    BDB_UP,
    *(_gauge(name, BDB, f"INFO {key} of the master shard") for name, key in BDB_INFO.items()),
    *(_gauge(name, BDB, f"INFO {key} of the master shard, in bytes per second")
      for name, key in BDB_RATES.items()),
    BDB_KEYS, BDB_LIMIT, BDB_SHARDS,
    *(_counter(name, BDB, f"INFO {key} of the master shard") for name, key in BDB_COUNTERS.items()),
    BDB_COMMANDS, BDB_COMMAND_SECONDS,
)

FAMILIES: tuple[Family, ...] = NODE_FAMILIES + CLUSTER_FAMILIES + SHARD_FAMILIES + BDB_FAMILIES


def exposed_names() -> set[str]:
    """Every sample name the node's endpoint may expose (what dashboards and rules may query)."""
    return {family.name for family in FAMILIES}


def _f(info: Mapping[str, Any], key: str) -> float:
    try:
        return float(info.get(key, 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def commandstats(info: Mapping[str, Any]) -> tuple[float, float]:
    """(calls, seconds) over every command of INFO commandstats (redis-py's `cmdstat_*` entries)."""
    calls = usec = 0.0
    for name, value in info.items():
        if str(name).startswith("cmdstat_") and isinstance(value, dict):
            calls += _f(value, "calls")
            usec += _f(value, "usec")
    return calls, usec / 1e6


def kept_certificates(cluster: ClusterRecord) -> dict[str, str]:
    """The certificates the cluster state keeps, by the name the expiry metric gives them: the leaf of
    each one a user gave, and the database CA (and the next one during a rotation)."""
    kept = {name: given.chain for name, given in sorted(cluster.served_certificates.items())}
    if cluster.proxy_chain:
        kept["proxy"] = cluster.proxy_chain
    if cluster.database_ca_cert:
        kept["database_ca"] = cluster.database_ca_cert
    if cluster.database_ca_next_cert:
        kept["database_ca_next"] = cluster.database_ca_next_cert
    return kept


@functools.lru_cache(maxsize=32)
def _expiry(certificate_pem: str) -> float:
    """The first certificate's notAfter (epoch seconds); parsed once per distinct PEM."""
    return not_after(certificate_pem).timestamp()


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def cluster_view(state: ClusterState, now: float) -> list[Metric]:
    """The `recluster_cluster_*` families from a cluster state at time `now` (pure)."""
    cluster = state.cluster.name
    made = {family.name: family.make() for family in CLUSTER_FAMILIES}
    made[CLUSTER_NODES.name].add_metric([cluster], float(len(state.nodes)))
    made[CLUSTER_QUORUM.name].add_metric([cluster], float(state.majority()))
    for node in sorted(state.nodes.values(), key=lambda n: n.uid):
        made[CLUSTER_NODE_REACHABLE.name].add_metric([cluster, str(node.uid), node.name],
                                                     1.0 if node.reachable else 0.0)
    for bdb in sorted(state.bdbs.values(), key=lambda b: b.uid):
        labels = [cluster, str(bdb.uid), bdb.name, str(bdb.replication).lower()]
        made[CLUSTER_BDB_INFO.name].add_metric(labels, 1.0)
        if bdb.backup or bdb.last_backup_time or bdb.backup_failures_total:
            backup_labels = [cluster, str(bdb.uid)]
            if bdb.last_backup_time:
                made[CLUSTER_BACKUP_SUCCESS.name].add_metric(backup_labels, _epoch(bdb.last_backup_time))
            if bdb.backup:
                made[CLUSTER_BACKUP_FAILING.name].add_metric(backup_labels, float(bdb.backup_failures))
            made[CLUSTER_BACKUP_FAILURES.name].add_metric(backup_labels, float(bdb.backup_failures_total))
    for name, pem in kept_certificates(state.cluster).items():
        made[CLUSTER_CERT.name].add_metric([cluster, name], _expiry(pem) - now)
    return list(made.values())


def shard_and_bdb_view(state: ClusterState, node_uid: int, infos: Mapping[int, Mapping[str, Any]],
                       cert_expiry: Mapping[int, float]) -> list[Metric]:
    """The shard and database families of the shards the state places on `node_uid` (pure): `infos`
    is each answering shard's INFO by shard uid (a shard missing from it did not answer),
    `cert_expiry` the seconds left on each TLS shard's certificate."""
    cluster, node = state.cluster.name, str(node_uid)
    made = {family.name: family.make() for family in SHARD_FAMILIES + BDB_FAMILIES}

    def add(family: str, labels: list[str], value: float) -> None:
        made[family].add_metric(labels, value)

    for shard in state.shards_on(node_uid):
        bdb = state.bdbs.get(shard.bdb_uid)
        if bdb is None:
            continue
        labels = [cluster, str(bdb.uid), node, shard.role, str(shard.uid)]
        if shard.uid in cert_expiry:
            add(SHARD_CERT.name, labels, cert_expiry[shard.uid])
        info = infos.get(shard.uid)
        add(SHARD_UP.name, labels, 1.0 if info else 0.0)
        bdb_labels = [cluster, str(bdb.uid)]
        if shard.role == "master":  # the state's master: its node reports the database
            add(BDB_UP.name, bdb_labels, 1.0 if info and info.get("role") == "master" else 0.0)
        if not info:
            continue
        for name, key in SHARD_INFO.items():
            add(name, labels, _f(info, key))
        keys, _ = keyspace(dict(info))
        add(SHARD_KEYS.name, labels, keys)
        add(SHARD_LINK.name, labels, 1.0 if info.get("master_link_status") == "up" else 0.0)
        add(SHARD_OPS.name, labels, _f(info, "instantaneous_ops_per_sec"))
        if shard.role != "master" or info.get("role") != "master":
            continue
        for name, key in BDB_INFO.items():
            add(name, bdb_labels, _f(info, key))
        for name, key in BDB_RATES.items():
            add(name, bdb_labels, _f(info, key) * 1024)
        add(BDB_KEYS.name, bdb_labels, keys)
        add(BDB_LIMIT.name, bdb_labels, float(bdb.memory_size))
        add(BDB_SHARDS.name, bdb_labels, float(len(state.shards_of(bdb.uid))))
        for name, key in BDB_COUNTERS.items():
            add(name, bdb_labels, _f(info, key))
        calls, seconds = commandstats(info)
        add(BDB_COMMANDS.name, bdb_labels, calls)
        add(BDB_COMMAND_SECONDS.name, bdb_labels, seconds)
    return list(made.values())


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
