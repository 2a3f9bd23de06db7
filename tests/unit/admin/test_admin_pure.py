"""The admin CLI's pure parts: `status` joins Kubernetes and the REST API into one document and says
what is unhealthy; the tables show it; which database a name means; when a planned failover may run
and when it is over; redis-cli's command line (never the password); where a database is reached;
the log filters."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
from rich.console import Console

from recluster.admin.connect import candidates, redis_cli_command, service_server_name
from recluster.admin.databases import resolve_database
from recluster.admin.errors import AdminError
from recluster.admin.failover import failover_plan, new_master
from recluster.admin.logs import Process, keep, line_process, parse_duration, parse_process
from recluster.admin.status import Observed, build_status, render_status

pytestmark = pytest.mark.unit


def pod(name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"redis.io/role": "node", "redis.io/cluster": "rec"}},
            "spec": {"nodeName": f"k{name[-1]}", "containers": [{"name": "redis-enterprise-node"}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "redis-enterprise-node", "restartCount": 1}]}}


def node(uid: int, ip: str, status: str = "active", leader: bool = False) -> dict[str, Any]:
    return {"uid": uid, "addr": ip, "name": f"rec-{uid - 1}.rec.ns.svc.cluster.local", "status": status,
            "role": "master" if leader else "slave", "shard_list": [], "master_shards": []}


def service(name: str, uid: int, cluster_ip: str = "198.19.0.5") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"redis.io/cluster": "rec", "redis.io/bdb-uid": str(uid)}},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": [{"port": 12000}]}}


def endpoint_slice(service_name: str, pod_name: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": service_name, "labels": {"kubernetes.io/service-name": service_name}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "name": pod_name}}]}


def healthy() -> Observed:
    rec = {"metadata": {"name": "rec", "namespace": "ns"}, "spec": {"nodes": 3},
           "status": {"state": "Running", "specStatus": "Valid", "readyNodes": 3, "version": "0.1.0",
                      "conditions": [{"type": "Ready", "status": "True", "message": "ok"}]}}
    return Observed(
        rec=rec,
        pods=[pod("rec-0", "10.0.0.1"), pod("rec-1", "10.0.0.2"), pod("rec-2", "10.0.0.3")],
        redbs=[{"metadata": {"name": "cache"}, "spec": {},
                "status": {"databaseUID": "1", "status": "active", "specStatus": "Valid"}}],
        services=[service("cache", 1), service("cache-headless", 1, "None")],
        slices=[endpoint_slice("cache", "rec-1", "10.0.0.2"),
                endpoint_slice("cache-headless", "rec-1", "10.0.0.2")],
        cluster={"name": "rec.ns.svc.cluster.local", "master_node": 1, "quorum": 2},
        nodes=[node(1, "10.0.0.1", leader=True), node(2, "10.0.0.2"), node(3, "10.0.0.3")],
        bdbs=[{"uid": 1, "name": "cache", "status": "active", "port": 12000, "replication": True,
               "tls_mode": "disabled", "memory_size": 104857600, "authentication_redis_pass": "hunter22",
               "endpoints": [{"dns_name": "rec-1.rec.ns.svc.cluster.local", "port": 12000}]}],
        shards=[{"uid": "1", "bdb_uid": 1, "node_uid": "2", "role": "master", "status": "active"},
                {"uid": "2", "bdb_uid": 1, "node_uid": "3", "role": "slave", "status": "active"}],
        rest_pod="rec-0", rest_via="direct",
    )


def test_a_healthy_cluster_joined_from_kubernetes_and_the_rest_api() -> None:
    doc = build_status(healthy())
    assert doc["health"] == {"ok": True, "problems": []}
    assert [(n["uid"], n["pod"], n["leader"], n["podReady"]) for n in doc["nodes"]] == [
        (1, "rec-0", True, True), (2, "rec-1", False, True), (3, "rec-2", False, True)]
    (db,) = doc["databases"]
    assert (db["name"], db["redb"], db["masterNode"], db["masterPod"], db["shards"]) == ("cache", "cache", 2,
                                                                                          "rec-1", 2)
    assert [(s["uid"], s["role"], s["pod"], s["port"], s["inSync"]) for s in doc["shards"]] == [
        (1, "master", "rec-1", 12000, True), (2, "slave", "rec-2", 12000, True)]
    assert [(e["service"], e["type"], e["pods"], e["pointsAtMaster"]) for e in doc["endpoints"]] == [
        ("cache", "ClusterIP", ["rec-1"], True), ("cache-headless", "Headless", ["rec-1"], True)]
    assert "hunter22" not in str(doc)  # status never shows a password


def test_the_problems_a_sick_cluster_has() -> None:
    observed = healthy()
    observed.rec["status"]["conditions"][0] = {"type": "Ready", "status": "False", "message": "1 of 3 ready"}
    observed.pods[2] = pod("rec-2", "10.0.0.3", ready=False)
    observed.nodes[1]["status"] = "down"
    observed.nodes[2]["status"] = "down"
    observed.shards[1]["status"] = "inactive"
    observed.slices = [endpoint_slice("cache", "rec-0", "10.0.0.1")]
    problems = build_status(observed)["health"]["problems"]
    assert problems == [
        "REC rec is not Ready (state Running): 1 of 3 ready",
        "2 of 3 node pods ready (not ready: rec-2)",
        "node 2 (rec-1) is down",
        "node 3 (rec-2) is down",
        "quorum lost: 1 of 3 nodes active (2 needed)",
        "database cache (bdb 1): replica shard 2 on node 3 is inactive",
        "database cache (bdb 1) is replicated but has no replica in sync",
        "Service cache leads to rec-0, the master is on rec-1",
        "Service cache-headless has no ready endpoint",
    ]


def test_without_the_rest_api_status_still_shows_kubernetes_and_says_why() -> None:
    observed = healthy()
    observed.cluster, observed.nodes, observed.bdbs, observed.shards = None, [], [], []
    observed.rest_error = "no node pod of REC rec answers its REST API"
    doc = build_status(observed)
    assert doc["health"]["problems"] == [
        "the REST API did not answer: no node pod of REC rec answers its REST API"]
    assert [p["name"] for p in doc["pods"]] == ["rec-0", "rec-1", "rec-2"]


def test_the_tables() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_status(build_status(healthy())))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for line in ("CLUSTER rec (namespace ns): state Running, Ready yes, 3/3 nodes ready", "NODES",
                 "DATABASES", "SHARDS", "ENDPOINTS", "HEALTH: OK"):
        assert line in text
    assert "db:1  cache  cache  active  12000  yes          no   2       node:2 (rec-1)  100 MiB" in text
    assert "redis:1  db:1  cache  master  node:2  rec-1  12000  active  yes" in text


BDBS = [{"uid": 1, "name": "cache"}, {"uid": 2, "name": "sessions"}, {"uid": 3, "name": "2"}]
REDBS = [{"metadata": {"name": "my-cache"}, "status": {"databaseUID": "1"}},
         {"metadata": {"name": "pending"}, "status": {"status": "pending"}}]


@pytest.mark.parametrize(("ref", "uid", "redb"), [
    ("my-cache", 1, "my-cache"), ("cache", 1, "my-cache"), ("sessions", 2, None), ("db:2", 2, None),
    ("2", 3, None),  # a database named "2" wins over uid 2, as a name should
])
def test_which_database_a_name_means(ref: str, uid: int, redb: str | None) -> None:
    bdb, found = resolve_database(ref, BDBS, REDBS)
    assert bdb["uid"] == uid and (found["metadata"]["name"] if found else None) == redb


def test_an_unknown_database_lists_the_known_ones() -> None:
    with pytest.raises(AdminError, match=r"no database 'nope'.*cache \(db:1\), sessions \(db:2\)"):
        resolve_database("nope", BDBS, REDBS)
    with pytest.raises(AdminError, match="REDB pending has no database in the cluster yet"):
        resolve_database("pending", BDBS, REDBS)


SHARDS = [{"uid": "1", "role": "master", "node_uid": "2", "status": "active"},
          {"uid": "2", "role": "slave", "node_uid": "3", "status": "active"}]


def test_a_planned_failover_needs_a_replicated_active_database_with_a_replica_in_sync() -> None:
    bdb = {"uid": 1, "name": "cache", "replication": True, "status": "active"}
    assert failover_plan(bdb, SHARDS)["uid"] == "1"
    with pytest.raises(AdminError, match=r"no replica \(replication is off\)"):
        failover_plan({**bdb, "replication": False}, SHARDS)
    with pytest.raises(AdminError, match="is pending"):
        failover_plan({**bdb, "status": "pending"}, SHARDS)
    lagging = copy.deepcopy(SHARDS)
    lagging[1]["status"] = "inactive"
    with pytest.raises(AdminError, match="no replica in sync"):
        failover_plan(bdb, lagging)


def test_the_failover_is_over_when_an_active_master_is_on_another_node() -> None:
    assert new_master(SHARDS, "2") is None
    moved = [{**SHARDS[0], "role": "slave"}, {**SHARDS[1], "role": "master", "status": "inactive"}]
    assert new_master(moved, "2") is None
    moved[1]["status"] = "active"
    assert new_master(moved, "2") == moved[1]


def test_the_password_goes_to_redis_cli_in_its_environment_never_on_its_command_line() -> None:
    argv, env = redis_cli_command("redis-cli", "10.0.0.2", 12000, "hunter22", ca_file="/tmp/ca.crt",
                                  server_name="cache.ns.svc", extra=("INFO", "replication"))
    assert argv == ["redis-cli", "-h", "10.0.0.2", "-p", "12000", "--tls", "--cacert", "/tmp/ca.crt",
                    "--sni", "cache.ns.svc", "INFO", "replication"]
    assert env == {"REDISCLI_AUTH": "hunter22"} and not any("hunter22" in a for a in argv)
    assert redis_cli_command("redis-cli", "h", 1, None) == (["redis-cli", "-h", "h", "-p", "1"], {})


def test_where_a_database_is_reached_from_best_to_last() -> None:
    balancer = {**service("cache-load-balancer", 1, "198.19.0.9"),
                "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.200"}]}}}
    balancer["spec"]["type"] = "LoadBalancer"
    services = [service("cache-headless", 1, "None"), service("cache", 1), balancer]
    found = candidates(services, pod("rec-1", "10.0.0.2"), 12000)
    assert [(t.host, t.port, t.how) for t in found] == [
        ("198.18.0.200", 12000, "Service cache-load-balancer (load balancer)"),
        ("198.19.0.9", 12000, "Service cache-load-balancer"),
        ("198.19.0.5", 12000, "Service cache"),
        ("10.0.0.2", 12000, "pod rec-1"),
    ]
    assert service_server_name(services, "ns") == "cache.ns.svc"


@pytest.mark.parametrize(("line", "process"), [
    ("[ccs] 8:M 07 Dec 2026 ready", "ccs"),
    ("[sentinel-tls] +switch-master", "sentinel-tls"),
    ("[shard of bdb 12] 23:S sync", "shard of bdb 12"),
    ("2026-12-07 05:06:03,061 INFO recluster.node.leader_loop: leader: shard 19", "daemon"),
    ('{"process": "sentinel", "message": "+sdown"}', "sentinel"),
    ('{"logger": "recluster.node"}', "daemon"),
    ("[not closed", "daemon"),
])
def test_the_process_of_a_log_line(line: str, process: str) -> None:
    assert line_process(line) == process
    assert line_process(f"2026-12-07T05:06:03.061234567Z {line}", timestamps=True) == process


def test_process_filters() -> None:
    shards, one, ccs = parse_process("shards"), parse_process("shard:12"), parse_process("CCS")
    assert (shards, one, ccs) == (Process("shards"), Process("shard", 12), Process("ccs"))
    assert keep("[shard of bdb 12] x", [one]) and not keep("[shard of bdb 1] x", [one])
    assert keep("[shard of bdb 1] x", [shards]) and not keep("[ccs] x", [shards])
    assert keep("anything", []) and keep("daemon line", [parse_process("daemon"), ccs])
    assert parse_process("bdb:3") == parse_process("db:3") == Process("shard", 3)
    with pytest.raises(ValueError, match="'shard:x' is not a process: use one of daemon, ccs"):
        parse_process("shard:x")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2h", 7200)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "m", "0s", "-1m", "1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
