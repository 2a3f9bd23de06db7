"""The node's metric families: names that keep Redis Enterprise's where it has them and never equal
node_exporter's or redis_exporter's, and what a scrape reports from a state and the shards' INFO."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client.core import Metric

from recluster.certificates import Authority, UserCertificate
from recluster.node.metric_families import FAMILIES, exposed_names
from recluster.node.metric_samples import cluster_view, commandstats, shard_and_bdb_view
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState, NodeRecord, ShardRecord

pytestmark = pytest.mark.unit

# Redis Enterprise's v1 node metrics that recluster reports with the same meaning (docs/monitoring.md)
RE_NODE_NAMES = {"node_up", "node_free_memory", "node_available_memory", "node_persistent_storage_free",
                 "node_cert_expiration_seconds"}
# Names node_exporter (collector/fixtures/e2e-output*.txt) and redis_exporter (exporter/*.go) export
# that a Redis Enterprise-style exporter could plausibly have used; recluster's before this list was
# made included nine of the redis_exporter ones (RE's v1 shard names).
EXPORTERS = {
    "node_load1", "node_boot_time_seconds", "node_time_seconds", "node_memory_MemFree_bytes",
    "node_memory_MemAvailable_bytes", "node_filesystem_free_bytes", "node_filesystem_avail_bytes",
    "node_uname_info", "node_exporter_build_info",
    "redis_up", "redis_connected_clients", "redis_blocked_clients", "redis_connected_slaves",
    "redis_master_repl_offset", "redis_master_sync_in_progress", "redis_rdb_bgsave_in_progress",
    "redis_aof_rewrite_in_progress", "redis_mem_fragmentation_ratio", "redis_instantaneous_ops_per_sec",
    "redis_db_keys", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_evicted_keys_total",
    "redis_expired_keys_total", "redis_keyspace_hits_total", "redis_keyspace_misses_total",
    "redis_commands_processed_total", "redis_net_input_bytes_total", "redis_net_output_bytes_total",
    "redis_connections_received_total", "redis_master_link_up", "redis_uptime_in_seconds",
    "redis_pubsub_channels", "redis_pubsub_patterns", "redis_instance_info", "redis_server_threads_total",
}


def test_names_follow_redis_enterprise_or_are_our_own() -> None:
    names = [family.name for family in FAMILIES]
    assert len(names) == len(set(names))
    for name in names:
        assert (name.startswith(("bdb_", "redis_server_", "recluster_")) or name in RE_NODE_NAMES), name
    assert not exposed_names() & EXPORTERS


def test_counters_and_only_counters_end_in_total() -> None:
    for family in FAMILIES:
        assert family.kind in ("gauge", "counter")
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        made = family.make()
        assert made.type == family.kind
        assert made.name + ("_total" if family.kind == "counter" else "") == family.name


def _state() -> ClusterState:
    def node(uid: int) -> NodeRecord:
        return NodeRecord(uid=uid, name=f"rec-{uid - 1}.rec", addr=f"10.0.0.{uid}", api_port=9443,
                          ccs_port=3333, sentinel_port=8001, metrics_port=8070, reachable=uid != 3)

    bdb = BdbRecord(uid=7, name="cache", memory_size=100 << 20, port=12000, replication=True,
                    data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                    eviction_policy="volatile-lru")
    return ClusterState(
        cluster=ClusterRecord(name="rec.ns.svc.cluster.local", created_time="t", username="u",
                              password_hash="h"),
        nodes={uid: node(uid) for uid in (1, 2, 3)}, bdbs={7: bdb},
        shards={1: ShardRecord(uid=1, bdb_uid=7, node_uid=1, role="master", status="active"),
                2: ShardRecord(uid=2, bdb_uid=7, node_uid=2, role="slave", status="active")},
    )


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(families: list[Metric]) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def _value(samples: Samples, family: str, **labels: str) -> float:
    return samples[(family, tuple(sorted(labels.items())))]


MASTER_INFO: dict[str, Any] = {
    "role": "master", "used_memory": 2048, "connected_clients": 3, "connected_slaves": 1,
    "instantaneous_ops_per_sec": 42, "instantaneous_input_kbps": 2.0, "instantaneous_output_kbps": 0.5,
    "keyspace_hits": 10, "total_net_input_bytes": 999, "db0": {"keys": 5, "expires": 1, "avg_ttl": 0},
    "cmdstat_get": {"calls": 6, "usec": 30}, "cmdstat_set": {"calls": 4, "usec": 20},
}


def test_cluster_view_says_which_nodes_the_leader_reached() -> None:
    samples = _samples(cluster_view(_state(), 0.0))
    cluster = "rec.ns.svc.cluster.local"
    assert _value(samples, "recluster_cluster_nodes", cluster=cluster) == 3
    assert _value(samples, "recluster_cluster_quorum", cluster=cluster) == 2
    reachable = "recluster_cluster_node_reachable"
    assert _value(samples, reachable, cluster=cluster, node="1", name="rec-0.rec") == 1
    assert _value(samples, reachable, cluster=cluster, node="3", name="rec-2.rec") == 0
    assert _value(samples, "recluster_cluster_bdb_info", cluster=cluster, bdb="7", name="cache",
                  replication="true") == 1


def test_scheduled_backups_are_reported_from_the_state() -> None:
    state = _state()
    cluster = "rec.ns.svc.cluster.local"
    assert not any(name.startswith("recluster_cluster_bdb_backup") for name, _ in _samples(
        cluster_view(state, 0.0)))  # a database without scheduled backups has none of these series
    state.bdbs[7] = state.bdbs[7].model_copy(update={
        "backup": True, "last_backup_time": "2026-12-07T12:00:00Z", "backup_failures": 2,
        "backup_failures_total": 5})
    samples = _samples(cluster_view(state, 0.0))
    assert _value(samples, "recluster_cluster_bdb_backup_last_success_timestamp_seconds", cluster=cluster,
                  bdb="7") == dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC).timestamp()
    assert _value(samples, "recluster_cluster_bdb_backup_failures", cluster=cluster, bdb="7") == 2
    assert _value(samples, "recluster_cluster_bdb_backup_failures_total", cluster=cluster, bdb="7") == 5


def test_every_certificate_the_cluster_keeps_reports_its_expiry_and_nothing_else_does() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    ca = Authority.create("database CA", days=3650, now=now)
    next_ca = Authority.create("next CA", days=3650, now=now)
    api = ca.issue("api.example.com", ["api.example.com"], days=90, now=now)
    proxy = ca.issue("db.example.com", ["db.example.com"], days=30, now=now)
    state = _state()
    plain = _samples(cluster_view(state, now.timestamp()))
    assert not [key for key in plain if key[0] == "recluster_cluster_cert_expiration_seconds"]
    state.cluster.database_ca_cert, state.cluster.database_ca_key = ca.pem().certificate, ca.pem().key
    state.cluster.database_ca_next_cert = next_ca.pem().certificate
    state.cluster.proxy_chain = proxy.certificate + ca.pem().certificate  # the leaf first, then the chain
    given = UserCertificate(api.certificate, api.key, ca.pem().certificate)
    state.cluster.served_certificates = {"api": given}
    samples = _samples(cluster_view(state, now.timestamp()))
    cluster, day = "rec.ns.svc.cluster.local", 86400.0
    expiring = {dict(labels)["name"]: value for (family, labels), value in samples.items()
                if family == "recluster_cluster_cert_expiration_seconds"}
    assert expiring == {"api": 90 * day, "proxy": 30 * day, "database_ca": 3650 * day,
                        "database_ca_next": 3650 * day}
    family = "recluster_cluster_cert_expiration_seconds"
    assert _value(samples, family, cluster=cluster, name="proxy") == 30 * day
    assert all(state.cluster.database_ca_key not in repr(key) for key in samples)


def test_the_master_node_reports_the_database_and_its_shard() -> None:
    cluster = "rec.ns.svc.cluster.local"
    samples = _samples(shard_and_bdb_view(_state(), 1, {1: MASTER_INFO}, {1: 86400.0}))
    shard = {"cluster": cluster, "bdb": "7", "node": "1", "role": "master", "shard": "1"}
    assert _value(samples, "redis_server_up", **shard) == 1
    assert _value(samples, "redis_server_used_memory", **shard) == 2048
    assert _value(samples, "redis_server_db_keys", **shard) == 5
    assert _value(samples, "recluster_shard_instantaneous_ops_per_sec", **shard) == 42
    assert _value(samples, "recluster_shard_cert_expiration_seconds", **shard) == 86400
    bdb = {"cluster": cluster, "bdb": "7"}
    assert _value(samples, "bdb_up", **bdb) == 1
    assert _value(samples, "bdb_conns", **bdb) == 3
    assert _value(samples, "bdb_total_req", **bdb) == 42
    assert _value(samples, "bdb_ingress_bytes", **bdb) == 2048  # RE's rate in bytes/s, INFO's is KiB/s
    assert _value(samples, "bdb_no_of_keys", **bdb) == 5
    assert _value(samples, "bdb_memory_limit", **bdb) == 100 << 20
    assert _value(samples, "bdb_shards_used", **bdb) == 2
    assert _value(samples, "recluster_bdb_ingress_bytes_total", **bdb) == 999
    assert _value(samples, "recluster_bdb_commands_total", **bdb) == 10
    assert _value(samples, "recluster_bdb_commands_duration_seconds_total", **bdb) == pytest.approx(50e-6)


def test_a_master_that_does_not_answer_makes_the_database_down() -> None:
    samples = _samples(shard_and_bdb_view(_state(), 1, {}, {}))
    assert _value(samples, "bdb_up", cluster="rec.ns.svc.cluster.local", bdb="7") == 0
    assert _value(samples, "redis_server_up", cluster="rec.ns.svc.cluster.local", bdb="7", node="1",
                  role="master", shard="1") == 0
    assert not any(name == "bdb_conns" for name, _ in samples)


def test_the_replica_node_reports_its_shard_only() -> None:
    info = {"role": "slave", "master_link_status": "up", "db0": {"keys": 5}}
    samples = _samples(shard_and_bdb_view(_state(), 2, {2: info}, {}))
    shard = {"cluster": "rec.ns.svc.cluster.local", "bdb": "7", "node": "2", "role": "slave", "shard": "2"}
    assert _value(samples, "redis_server_master_link_status", **shard) == 1
    assert not any(name.startswith(("bdb_", "recluster_bdb_")) for name, _ in samples)


def test_commandstats_sums_every_command() -> None:
    assert commandstats(MASTER_INFO) == (10.0, pytest.approx(50e-6))
    assert commandstats({"role": "master"}) == (0.0, 0.0)
