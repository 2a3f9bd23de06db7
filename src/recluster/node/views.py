"""Records as the public API shows them. Pure."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any

from recluster import __version__
from recluster.node.backup_schedule import next_backup_time
from recluster.node.engines import EngineTable
from recluster.node.records import ActionRecord, BdbRecord, ClusterState, NodeRecord, ShardRecord


class RenderedList:
    """A list view of one parsed state, rendered and serialised once: the store hands out one state
    object per revision, so a list asked for again at rest (GET /v1/bdbs at 100 databases: 90 KiB of
    JSON) costs an identity check, not 100 views and an encoding. Holds the state it rendered."""

    def __init__(self, render: Callable[[ClusterState], list[dict[str, Any]]]) -> None:
        self._render = render
        self._state: ClusterState | None = None
        self._views: list[dict[str, Any]] = []
        self._body = b"[]"

    def of(self, state: ClusterState) -> tuple[list[dict[str, Any]], bytes]:
        """The views (read-only) and their JSON, as Starlette's JSONResponse would encode them."""
        if state is not self._state:
            views = self._render(state)
            body = json.dumps(views, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            self._state, self._views, self._body = state, views, body.encode()
        return self._views, self._body


def running_version(bdb: BdbRecord, engines: EngineTable) -> str:
    """The version a bdb's shards run: the engine its `redis_version` names, which the shard
    supervisor starts them with (a node without that engine starts none), as this node's table
    spells it; while an engine upgrade runs, the version it started from, until every shard runs
    the new one (`redis_version` is then the target)."""
    version = bdb.upgrade_from or bdb.redis_version
    engine = engines.get(version)
    return engine.version if engine is not None else version


def bdb_view(state: ClusterState, bdb: BdbRecord, engines: EngineTable) -> dict[str, Any]:
    """A bdb as GET /v1/bdbs shows it; `version` is what its shards run (running_version)."""
    # the cluster's own passwords are never shown (with the default user off the database password is
    # one of them)
    # nor the backup location (it holds an S3 secret key, sealed): its digest says which one is set
    hidden = {"generation", "internal_password", "internal_logins", "backup_location", "backup_since"}
    out: dict[str, Any] = bdb.model_dump(exclude=hidden if bdb.default_user
                                         else {*hidden, "authentication_redis_pass"})
    following = next_backup_time(bdb)
    out["next_backup_time"] = following.isoformat() if following is not None else None
    out["snapshot_policy"] = [r.model_dump() for r in bdb.snapshot_policy]
    shards = state.shards_of(bdb.uid)
    out["shard_list"] = [s.uid for s in shards]
    out["sharding"] = False
    out["version"] = running_version(bdb, engines)
    out["wait_command"] = True
    out["proxy_policy"] = "single"
    out["ssl"] = bdb.client_auth()  # the public API's older name for "clients present certificates"
    master = next((s for s in shards if s.role == "master"), None)
    node = state.nodes.get(master.node_uid) if master else None
    out["endpoints"] = []
    if node is not None:
        out["endpoints"] = [{
            "uid": f"{bdb.uid}:1", "dns_name": node.name, "addr": [node.addr], "addr_type": "internal",
            "port": bdb.port, "proxy_policy": "single", "oss_cluster_api_preferred_ip_type": "internal",
            "exclude_proxies": [], "include_proxies": [],
        }]
        if bdb.external_addr:  # reached from outside the cluster (the rigger's LoadBalancer Services)
            hostnames = [a for a in bdb.external_addr if not _is_ip(a)]
            out["endpoints"].append({
                "uid": f"{bdb.uid}:2", "dns_name": hostnames[0] if hostnames else "",
                "addr": [a for a in bdb.external_addr if _is_ip(a)], "addr_type": "external",
                "port": bdb.port, "proxy_policy": "single", "oss_cluster_api_preferred_ip_type": "external",
                "exclude_proxies": [], "include_proxies": [],
            })
        out["dns_address_master"] = f"{node.name}:{bdb.port}"
        out["endpoint_node"] = node.uid
        out["endpoint_ip"] = [node.addr]
    return out


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def without_secrets(view: dict[str, Any]) -> dict[str, Any]:
    """A bdb view for a caller whose role may not read database passwords: nor the digest of the
    backup location, which would let such a caller test guesses of a weak S3 secret key offline."""
    return {k: v for k, v in view.items() if k not in ("authentication_redis_pass", "backup_location_digest")}


def shard_view(state: ClusterState, shard: ShardRecord) -> dict[str, Any]:
    node = state.nodes.get(shard.node_uid)
    bdb = state.bdbs.get(shard.bdb_uid)
    detailed = "ok" if shard.status == "active" else "down"
    return {
        "uid": str(shard.uid), "bdb_uid": shard.bdb_uid, "node_uid": str(shard.node_uid),
        "role": shard.role, "status": shard.status, "detailed_status": detailed,
        "assigned_slots": "0-16383", "node_name": node.name if node else "",
        "min_replicas_to_write": shard.min_replicas_to_write,
        # the engine its node starts it with, and the one the leader last saw it run
        "redis_version": shard.engine_of(bdb) if bdb else shard.engine,
        "running_version": shard.running_version,
    }


def node_status(node: NodeRecord) -> str:
    if node.status == "decommissioning":
        return "decommissioning"
    return "active" if node.reachable else "down"


def node_view(state: ClusterState, node: NodeRecord, leader_name: str | None,
              engines: EngineTable) -> dict[str, Any]:
    """`supported_database_versions` is the serving node's engine table: every node runs the same
    image (a node's own table in its record is left for mixed-image clusters)."""
    shards = state.shards_on(node.uid)
    return {
        "uid": node.uid, "addr": node.addr, "name": node.name, "hostname": node.name,
        "external_addr": [], "status": node_status(node), "accept_servers": node.status == "active",
        "shard_count": len(shards), "shard_list": [s.uid for s in shards],
        "master_shards": [s.uid for s in shards if s.role == "master"],
        "slave_shards": [s.uid for s in shards if s.role != "master"],
        "role": "master" if leader_name in (node.name, node.addr) else "slave",
        "software_version": __version__, "total_memory": node.total_memory, "cores": node.cores,
        "rack_id": "", "joined_time": node.joined_time,
        "supported_database_versions": engines.supported(),
        "ports": {"api": node.api_port, "sentinel": node.sentinel_port,
                  "sentinel_tls": node.sentinel_tls_port, "metrics": node.metrics_port,
                  "ccs": node.ccs_port},
    }


def action_view(action: ActionRecord) -> dict[str, Any]:
    out = action.model_dump(exclude={"initial_shards"})
    out["uid"] = action.action_uid
    return out


def cluster_view(state: ClusterState, leader_name: str | None, engines: EngineTable) -> dict[str, Any]:
    leader = state.node_by_name(leader_name) if leader_name else None
    default = engines.default()
    return {
        "name": state.cluster.name, "created_time": state.cluster.created_time,
        "nodes_count": len(state.nodes), "master_node": leader.uid if leader else None,
        "quorum": state.majority(), "bdbs_count": len(state.bdbs), "rack_aware": False,
        "software_version": __version__, "state_version": state.version,
        # what a database created without `redis_version` runs, and what there is to choose from
        "default_provisioned_redis_version": default.version if default else "",  # RE policy's name
        "supported_database_versions": engines.supported(),
        "engines": engines.public(),
    }


def certificates_view(state: ClusterState) -> dict[str, Any]:
    """The cluster's public certificates (never a key). `proxy_cert` is what a client of a TLS
    database trusts, as in Redis Enterprise: the CA that signs every shard's certificate, and with a
    user's certificate (`proxy_user_cert`, what the shards then serve) its CA first. The database CA
    stays in it either way: it signs the TLS sentinels' certificates. `api_cert`, `cm_cert`,
    `metrics_exporter_cert`: the certificate (and intermediates) a user gave that HTTPS server, empty
    while every node serves its own."""
    served = state.cluster.served_certificates
    return {"proxy_cert": state.cluster.database_trust(), "proxy_user_cert": state.cluster.proxy_chain,
            **{f"{name}_cert": served[name].chain if name in served else ""
               for name in ("api", "cm", "metrics_exporter")}}


def license_view(state: ClusterState) -> dict[str, Any]:
    text = state.cluster.license
    return {
        "license": text, "key": text, "cluster_name": state.cluster.name, "expired": False,
        "activation_date": state.cluster.license_updated or state.cluster.created_time,
        "expiration_date": None, "features": [], "owner": "", "trial": not text,
        "shards_limit": None, "ram_shards_limit": None,
        "ram_shards_in_use": len(state.shards), "flash_shards_limit": None, "flash_shards_in_use": 0,
        "enforced": False,
    }


def policy_view(state: ClusterState, default_grace_s: float) -> dict[str, Any]:
    """GET /v1/cluster/policy: the settings recluster acts on, with the grace in effect."""
    return {"slave_ha": state.cluster.slave_ha,
            "slave_ha_grace_period": int(state.cluster.grace_period_s(default_grace_s))}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
