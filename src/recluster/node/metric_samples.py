"""What a scrape of a node reports, built from a cluster state and the shards' INFO (pure: the
collector in metrics.py reads them; the families are metric_families.py)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client.core import Metric

from recluster.certificates import not_after
from recluster.node.metric_families import (
    BDB_COMMAND_SECONDS,
    BDB_COMMANDS,
    BDB_COUNTERS,
    BDB_FAMILIES,
    BDB_INFO,
    BDB_KEYS,
    BDB_LIMIT,
    BDB_RATES,
    BDB_SHARDS,
    BDB_UP,
    CLUSTER_BACKUP_FAILING,
    CLUSTER_BACKUP_FAILURES,
    CLUSTER_BACKUP_SUCCESS,
    CLUSTER_BDB_INFO,
    CLUSTER_CERT,
    CLUSTER_FAMILIES,
    CLUSTER_NODE_REACHABLE,
    CLUSTER_NODES,
    CLUSTER_QUORUM,
    SHARD_CERT,
    SHARD_FAMILIES,
    SHARD_INFO,
    SHARD_KEYS,
    SHARD_LINK,
    SHARD_OPS,
    SHARD_UP,
)
from recluster.node.records import ClusterRecord, ClusterState
from recluster.node.stats import keyspace


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
