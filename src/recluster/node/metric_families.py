"""The node's Prometheus metric families: each one's name, type, labels and meaning (pure; what a
scrape reports is built by metric_samples.py, the scrape itself is metrics.py). `docs/monitoring.md`
lists every family.

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

from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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

