"""The rigger's planner: Services, pod labels and secret names from (databases, master pods)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.rigger.loop import Rigger
from recluster.rigger.plan import (
    BDB_NAME,
    CLUSTER_IP,
    HEADLESS,
    LOAD_BALANCER,
    REDIS_PORT,
    Database,
    Pod,
    Settings,
    is_bdb_label,
    parse_service_types,
    plan,
    pod_of_node_name,
    service_names,
)

pytestmark = pytest.mark.unit

PODS = [Pod("rec-0", {"app": "redis-enterprise"}), Pod("rec-1", {}), Pod("rec-2", {})]


def settings(*types: str, naming: str = BDB_NAME) -> Settings:
    return Settings(cluster="rec", namespace="ns", types=types or (CLUSTER_IP, HEADLESS), naming=naming)


def test_default_services_select_the_master_pod() -> None:
    db = Database(uid=3, name="mydb", port=12000, master_pod="rec-1", secret="redb-mydb")
    result = plan(settings(), [db], PODS, [])
    names = [s["metadata"]["name"] for s in result.services]
    assert names == ["mydb", "mydb-headless"]
    cluster_ip, headless = result.services
    assert cluster_ip["spec"]["type"] == "ClusterIP" and "clusterIP" not in cluster_ip["spec"]
    assert headless["spec"]["clusterIP"] == "None"
    for service in result.services:
        assert service["spec"]["selector"] == {
            "app": "redis-enterprise",
            "redis.io/cluster": "rec",
            "redis.io/role": "node",
            "redis.io/bdb-3": "3",
        }
        assert service["spec"]["publishNotReadyAddresses"] is True  # the label decides, not readiness
        assert service["spec"]["ports"] == [
            {"name": "redis", "protocol": "TCP", "port": 12000, "targetPort": 12000}
        ]
    assert result.pod_labels == {"rec-1": {"redis.io/bdb-3": "3"}}
    assert result.secret_names == {"redb-mydb": ["mydb", "mydb-headless"]}
    assert result.delete_services == []


def test_load_balancer_and_redis_port_naming_and_service_port() -> None:
    db = Database(uid=1, name="mydb", port=12000, master_pod="rec-0", service_port=6379)
    result = plan(settings(CLUSTER_IP, LOAD_BALANCER, naming=REDIS_PORT), [db], PODS, [])
    assert [s["metadata"]["name"] for s in result.services] == ["redis-12000", "redis-12000-load-balancer"]
    assert result.services[1]["spec"]["type"] == "LoadBalancer"
    assert result.services[0]["spec"]["ports"][0]["port"] == 6379
    assert result.services[0]["spec"]["ports"][0]["targetPort"] == 12000


def test_label_moves_on_failover() -> None:
    pods = [Pod("rec-0", {"redis.io/bdb-3": "3", "redis.io/bdb-4": "4"}), Pod("rec-1", {}), Pod("rec-2", {})]
    dbs = [
        Database(uid=3, name="a", port=12000, master_pod="rec-1"),
        Database(uid=4, name="b", port=12001, master_pod="rec-0"),
    ]
    result = plan(settings(), dbs, pods, ["a", "a-headless", "b", "b-headless"])
    assert result.pod_labels == {"rec-0": {"redis.io/bdb-3": None}, "rec-1": {"redis.io/bdb-3": "3"}}


def test_deleted_database_loses_services_and_labels() -> None:
    pods = [Pod("rec-0", {"redis.io/bdb-9": "9", "redis.io/bdb-x": "keep", "other": "1"})]
    result = plan(settings(), [], pods, ["gone", "gone-headless"])
    assert result.delete_services == ["gone", "gone-headless"]
    assert result.pod_labels == {"rec-0": {"redis.io/bdb-9": None}}


def test_unknown_master_keeps_the_label_where_it_is() -> None:
    pods = [Pod("rec-0", {"redis.io/bdb-3": "3"}), Pod("rec-1", {})]
    result = plan(settings(), [Database(uid=3, name="a", port=12000, master_pod=None)], pods, [])
    assert result.pod_labels == {}


def test_service_types_parse() -> None:
    assert parse_service_types("cluster_ip,headless") == (CLUSTER_IP, HEADLESS)
    assert parse_service_types(" load_balancer ") == (LOAD_BALANCER,)
    assert parse_service_types("") == (CLUSTER_IP, HEADLESS)
    with pytest.raises(ValueError, match="nodeport"):
        parse_service_types("cluster_ip,nodeport")


def test_pod_of_node_name() -> None:
    names = ["rec-0", "rec-1"]
    ips = {"rec-0": "198.18.8.5", "rec-1": "198.18.9.5"}
    assert pod_of_node_name("rec-1.rec.ns.svc.cluster.local", names, ips) == "rec-1"
    assert pod_of_node_name("198.18.8.5", names, ips) == "rec-0"
    assert pod_of_node_name("rec-7.rec.ns.svc.cluster.local", names, ips) is None
    assert pod_of_node_name("", names, ips) is None


databases = st.lists(
    st.builds(
        Database,
        uid=st.integers(1, 50),
        name=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
        port=st.integers(10000, 19999),
        master_pod=st.sampled_from([None, "rec-0", "rec-1", "rec-2"]),
    ),
    unique_by=(lambda d: d.uid, lambda d: d.name, lambda d: d.port),
    max_size=6,
)
label_sets = st.dictionaries(
    st.sampled_from([f"redis.io/bdb-{i}" for i in range(1, 8)]), st.just("x"), max_size=4
)


@given(databases, st.lists(label_sets, min_size=3, max_size=3))
def test_after_the_plan_each_known_master_is_labelled_on_exactly_one_pod(
    dbs: list[Database], labels: list[dict[str, str]]
) -> None:
    pods = [Pod(f"rec-{i}", dict(labels[i])) for i in range(3)]
    result = plan(settings(), dbs, pods, [])
    after = {p.name: dict(p.labels) for p in pods}
    for pod, changes in result.pod_labels.items():
        for key, value in changes.items():
            if value is None:
                after[pod].pop(key, None)
            else:
                after[pod][key] = value
    for db in dbs:
        holders = [p for p, labels in after.items() if labels.get(f"redis.io/bdb-{db.uid}") == str(db.uid)]
        if db.master_pod is not None:
            assert holders == [db.master_pod]
    known = {db.uid for db in dbs}
    for labels_after in after.values():
        assert all(int(k.split("-")[-1]) in known for k in labels_after if is_bdb_label(k))
    # applying the plan again changes nothing
    again = plan(settings(), dbs, [Pod(name, labels) for name, labels in after.items()], [])
    assert again.pod_labels == {}
    names = [s["metadata"]["name"] for s in result.services]
    assert len(names) == len(set(names)) == 2 * len(dbs)
    assert names == [
        n
        for db in sorted(dbs, key=lambda d: d.uid)
        for n in service_names(db.name, db.port, (CLUSTER_IP, HEADLESS), BDB_NAME)
    ]


def test_switch_master_announcement_parses() -> None:
    rigger = Rigger.__new__(Rigger)
    import asyncio

    from recluster.rigger.loop import State

    rigger.state = State()
    rigger.wake = asyncio.Event()
    rigger.relabel = asyncio.Event()
    rigger.on_switch_master(b"mydb rec-0.rec.ns.svc.cluster.local 12000 rec-1.rec.ns.svc.cluster.local 12000")
    rigger.on_switch_master(b"ccs a 1 b 2")
    rigger.on_switch_master(b"garbage")
    assert list(rigger.state.overrides) == ["mydb"]
    assert rigger.state.overrides["mydb"][0] == "rec-1.rec.ns.svc.cluster.local"
    assert rigger.wake.is_set() and rigger.relabel.is_set()


def test_rigger_deployment_leaves_a_lost_node_within_seconds() -> None:
    from recluster.api import RedisEnterpriseCluster
    from recluster.operator.build.rigger import RIGGER_EVICTION_SECONDS, build_rigger_deployment

    def rec(**spec: object) -> RedisEnterpriseCluster:
        body = {"metadata": {"name": "rec", "namespace": "ns", "uid": "u"}, "spec": {"nodes": 3, **spec}}
        return RedisEnterpriseCluster.model_validate(body)

    pod = build_rigger_deployment(rec(), image="img")["spec"]["template"]["spec"]
    assert {(t["key"], t["tolerationSeconds"]) for t in pod["tolerations"]} == {
        ("node.kubernetes.io/unreachable", RIGGER_EVICTION_SECONDS),
        ("node.kubernetes.io/not-ready", RIGGER_EVICTION_SECONDS),
    }
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    pod = build_rigger_deployment(rec(podTolerations=[own]), image="img")["spec"]["template"]["spec"]
    assert [t["key"] for t in pod["tolerations"]] == [
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/not-ready",
    ]
    assert "tolerationSeconds" not in pod["tolerations"][0]
