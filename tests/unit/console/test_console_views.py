"""The console's view models: pure functions from the REST API's JSON to what the pages show."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.console import views

pytestmark = pytest.mark.unit

NODES: list[dict[str, Any]] = [
    {"uid": 1, "name": "127.0.0.11", "addr": "127.0.0.11", "status": "active", "total_memory": 8 * 2**30,
     "ports": {"metrics": 8070}},
    {"uid": 2, "name": "127.0.0.12", "addr": "127.0.0.12", "status": "active", "total_memory": 8 * 2**30},
    {"uid": 3, "name": "127.0.0.13", "addr": "127.0.0.13", "status": "down", "total_memory": 8 * 2**30},
]
BDBS: list[dict[str, Any]] = [
    {"uid": 1, "name": "orders", "status": "active", "port": 10000, "memory_size": 64 * 2**20,
     "replication": True, "eviction_policy": "volatile-lru", "data_persistence": "disabled", "version": "8.0",
     "endpoints": [{"dns_name": "127.0.0.12", "port": 10000}]},
    {"uid": 2, "name": "cache", "status": "pending", "port": 10001, "memory_size": 0, "replication": False,
     "endpoints": []},
]
SHARDS: list[dict[str, Any]] = [
    {"uid": "1", "bdb_uid": 1, "node_uid": "3", "role": "slave", "status": "inactive",
     "node_name": "127.0.0.13"},
    {"uid": "2", "bdb_uid": 1, "node_uid": "2", "role": "master", "status": "active",
     "node_name": "127.0.0.12"},
    {"uid": "3", "bdb_uid": 2, "node_uid": "1", "role": "master", "status": "inactive"},
]
METRICS = {1: {"available_memory": 6 * 2**30, "free_memory": 5 * 2**30, "uptime": 3725.0},
           2: {"available_memory": 7 * 2**30, "uptime": 59.0}}
STATS = {1: {"used_memory": 2 * 2**20, "no_of_keys": 1234.0, "instantaneous_ops_per_sec": 56.0}}


def test_formats() -> None:
    assert views.fmt_bytes(512) == "512 B"
    assert views.fmt_bytes(1536) == "1.5 KiB"
    assert views.fmt_bytes(3 * 2**30) == "3.0 GiB"
    assert views.fmt_bytes(None) == "—"
    assert views.fmt_duration(59) == "59s"
    assert views.fmt_duration(3725) == "1h 2m"
    assert views.fmt_duration(2 * 86400 + 7200) == "2d 2h"
    assert views.fmt_number(1234567) == "1,234,567"


def test_node_rows_show_status_leader_shards_memory_uptime() -> None:
    rows = views.node_rows(NODES, SHARDS, BDBS, METRICS, leader_uid=2)
    assert [r["uid"] for r in rows] == [1, 2, 3]
    assert [r["leader"] for r in rows] == [False, True, False]
    assert rows[1]["shards_text"] == "orders (master)"
    assert rows[2]["shards_text"] == "orders (replica)" and rows[2]["status"] == "down"
    assert rows[0]["memory_used"] == 2 * 2**30 and rows[0]["memory_free"] == 6 * 2**30
    assert rows[0]["memory_text"] == "2.0 GiB used, 6.0 GiB free of 8.0 GiB"
    assert rows[0]["uptime_text"] == "1h 2m"
    assert rows[2]["memory_used"] is None and "no metrics" in rows[2]["memory_text"]
    assert rows[2]["uptime_text"] == "—"


def test_bdb_rows_endpoint_stats_and_shard_placement_master_first() -> None:
    rows = views.bdb_rows(BDBS, SHARDS, NODES, STATS)
    orders, cache = rows
    assert orders["endpoint"] == "127.0.0.12:10000" and orders["sentinel_name"] == "orders"
    assert orders["memory_text"] == "2.0 MiB / 64.0 MiB"
    assert orders["keys_text"] == "1,234" and orders["ops_text"] == "56"
    assert [(s["role"], s["node"], s["node_status"]) for s in orders["shards"]] == [
        ("master", "127.0.0.12", "active"), ("replica", "127.0.0.13", "down")]
    assert cache["endpoint"] == "—" and cache["keys"] is None and cache["memory_text"] == "— / no limit"
    assert orders["version"] == "8.0" and cache["version"] == "—"  # the engine the shards run


def test_overview_health_memory_and_newest_actions_first() -> None:
    nodes = views.node_rows(NODES, SHARDS, BDBS, METRICS, leader_uid=1)
    bdbs = views.bdb_rows(BDBS, SHARDS, NODES, STATS)
    actions = {"actions": [{"action_uid": "a", "name": "remove_node", "creation_time": "2026-01-01T00:00:03Z",
                            "status": "running", "progress": 50}],
               "state-machines": [{"action_uid": "b", "name": "create_bdb", "object_name": "bdb:1",
                                   "creation_time": "2026-01-01T00:00:01Z", "status": "completed"}]}
    events = [{"time": "10:00:00", "text": "first"}, {"time": "10:00:02", "text": "second"}]
    cluster = {"name": "cluster.local", "software_version": "0.1.0", "master_node": 1, "quorum": 2}
    o = views.overview(cluster, nodes, bdbs, actions, events)
    assert o["leader"] == "127.0.0.11" and o["nodes_count"] == 3
    assert o["health"] == {"level": "degraded", "text": "1 of 3 nodes down", "up": 2, "total": 3}
    assert o["bdbs_count"] == 2 and o["bdbs_active"] == 1
    assert o["memory_free_text"] == "13.0 GiB" and o["memory_nodes_reporting"] == 2
    assert [a["name"] for a in o["actions"]] == ["remove node", "create bdb"]
    assert [e["text"] for e in o["events"]] == ["second", "first"]


def test_health_without_majority() -> None:
    rows = [{"status": "active"}, {"status": "down"}, {"status": "down"}]
    assert views.health(rows, 2)["level"] == "critical"
    assert views.health(rows[:1], 1)["level"] == "ok"


def test_events_tell_what_changed_between_two_polls() -> None:
    nodes = views.node_rows(NODES, SHARDS, BDBS, METRICS, leader_uid=1)
    bdbs = views.bdb_rows(BDBS, SHARDS, NODES, STATS)
    before = views.digest(nodes, bdbs)
    assert views.diff_events(None, before) == []
    assert views.diff_events(before, before) == []
    moved = [dict(s) for s in SHARDS]
    moved[0]["role"], moved[1]["role"] = "master", "slave"
    back = [*NODES[:2], {**NODES[2], "status": "active"}]
    nodes2 = views.node_rows(back, moved, BDBS, METRICS, leader_uid=2)
    bdbs2 = views.bdb_rows(BDBS[:1], moved, NODES, STATS)
    events = views.diff_events(before, views.digest(nodes2, bdbs2))
    assert "node 127.0.0.13: down → active" in events
    assert "leader moved from 127.0.0.11 to 127.0.0.12" in events
    assert "master of orders moved from 127.0.0.12 to 127.0.0.13" in events
    assert "database cache is gone" in events


def test_chart_points_fill_the_window_and_scale_to_the_highest_value() -> None:
    samples = [(100.0, 0.0), (250.0, 50.0), (400.0, 100.0), (10.0, 999.0)]  # the last is too old
    c = views.chart(samples, now=400.0, window_s=300.0, title="Ops", unit="ops", width=300, height=110)
    assert c["samples"] == 3 and c["max_text"] == "100" and c["latest_text"] == "100"
    points = [tuple(map(float, p.split(","))) for p in c["points"].split()]
    assert points[0] == (0.0, 110.0) and points[-1] == (300.0, 10.0)
    assert views.chart([], 1.0, 300.0, "Memory", "bytes")["points"] == ""


def test_a_short_history_is_spread_over_the_minimum_window() -> None:
    c = views.chart([(970.0, 1.0), (1000.0, 2.0)], now=1000.0, window_s=300.0, title="Ops", unit="ops",
                    width=60, height=10)
    assert c["window_text"] == "1m 0s"
    assert [p.split(",")[0] for p in c["points"].split()] == ["30.0", "60.0"]
    long = views.chart([(500.0, 1.0), (1000.0, 1.0)], now=1000.0, window_s=300.0, title="x", unit="ops")
    assert long["window_text"] == "5m 0s" and long["samples"] == 1


def test_form_to_api_body_leaves_rules_to_the_api() -> None:
    body, errors = views.bdb_body_from_form({"name": " orders ", "memory_mb": "64", "port": "70000",
                                             "replication": True, "eviction_policy": "allkeys-lru",
                                             "authentication_redis_pass": "pw"}, creating=True)
    assert errors == {}
    assert body == {"name": "orders", "memory_size": 64 * 2**20, "port": 70000, "replication": True,
                    "eviction_policy": "allkeys-lru", "authentication_redis_pass": "pw"}
    body, errors = views.bdb_body_from_form({"name": "x", "memory_mb": "", "port": ""}, creating=True)
    assert body == {"name": "x", "memory_size": 0, "replication": False} and errors == {}
    _, errors = views.bdb_body_from_form({"name": "x", "memory_mb": "lots", "port": "80a"}, creating=True)
    assert set(errors) == {"memory_mb", "port"}
    body, _ = views.bdb_body_from_form({"name": "x", "port": "10001", "memory_mb": "1"}, creating=False)
    assert "name" not in body and "port" not in body and "authentication_redis_pass" not in body


def test_api_errors_go_beside_their_field() -> None:
    dup = {"error_code": "name_exists", "message": "'name': a database named 'orders' exists",
           "field": "name"}
    assert views.form_errors(409, dup)["fields"] == {"name": dup["message"]}
    mem = {"error_code": "invalid_parameter", "message": "'memory_size': bad", "field": "memory_size"}
    assert views.form_errors(400, mem)["fields"] == {"memory_mb": "'memory_size': bad"}
    nested = {"message": "'snapshot_policy.0.secs': bad", "field": "snapshot_policy.0.secs"}
    assert views.form_errors(400, nested)["fields"] == {}
    quorum = {"error_code": "cluster_no_quorum", "message": "no majority"}
    assert views.form_errors(503, quorum) == {"message": "no majority", "fields": {},
                                              "code": "cluster_no_quorum"}
    assert views.form_errors(502, "gateway")["message"] == "the request failed (HTTP 502)"


def test_node_metrics_from_prometheus_text() -> None:
    text = ('# TYPE node_free_memory gauge\nnode_free_memory{cluster="c",node="1"} 1024.0\n'
            '# TYPE node_available_memory gauge\nnode_available_memory{cluster="c",node="1"} 2048.0\n'
            '# TYPE recluster_node_uptime_seconds gauge\n'
            'recluster_node_uptime_seconds{cluster="c",node="1"} 12.5\n'
            '# TYPE redis_server_used_memory gauge\nredis_server_used_memory{cluster="c"} 5.0\n')
    assert views.node_metrics_from_text(text) == {"free_memory": 1024.0, "available_memory": 2048.0,
                                                  "uptime": 12.5}
