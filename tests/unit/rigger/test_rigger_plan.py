"""The rigger's planner: Services, EndpointSlices, pod labels and secret names from (databases,
master pods)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api import redb
from recluster.api.naming import (
    BDB_NAME,
    CLUSTER_IP,
    HEADLESS,
    LOAD_BALANCER,
    REDIS_PORT,
    parse_service_types,
    service_names,
)
from recluster.rigger.plan import Database, Pod, Settings, is_bdb_label, plan, pod_of_node_name

pytestmark = pytest.mark.unit

PODS = [
    Pod("rec-0", {"app": "redis-enterprise"}, "10.0.0.10"),
    Pod("rec-1", {}, "10.0.0.11"),
    Pod("rec-2", {}, "10.0.0.12"),
]


def settings(*types: str, naming: str = BDB_NAME) -> Settings:
    return Settings(cluster="rec", namespace="ns", types=types or (CLUSTER_IP, HEADLESS), naming=naming)


def test_default_services_have_no_selector_and_slices_on_the_master_pod() -> None:
    db = Database(uid=3, name="mydb", port=12000, master_pod="rec-1", secret="redb-mydb")
    result = plan(settings(), [db], PODS, [])
    names = [s["metadata"]["name"] for s in result.services]
    assert names == ["mydb", "mydb-headless"]
    cluster_ip, headless = result.services
    assert cluster_ip["spec"]["type"] == "ClusterIP" and "clusterIP" not in cluster_ip["spec"]
    assert headless["spec"]["clusterIP"] == "None"
    for service in result.services:
        # the rigger writes the endpoints: kube-controller-manager must not
        assert "selector" not in service["spec"] and "publishNotReadyAddresses" not in service["spec"]
        assert service["spec"]["ports"] == [
            {"name": "redis", "protocol": "TCP", "port": 12000, "targetPort": 12000}
        ]
    assert [s["metadata"]["name"] for s in result.slices] == ["mydb", "mydb-headless"]
    for service, endpoint_slice in zip(result.services, result.slices, strict=True):
        assert endpoint_slice["apiVersion"] == "discovery.k8s.io/v1"
        assert endpoint_slice["kind"] == "EndpointSlice"
        assert endpoint_slice["metadata"]["namespace"] == "ns"
        labels = endpoint_slice["metadata"]["labels"]
        assert service["metadata"]["labels"].items() <= labels.items()
        assert labels["kubernetes.io/service-name"] == service["metadata"]["name"]
        assert labels["endpointslice.kubernetes.io/managed-by"] == "recluster-services-rigger"
        assert endpoint_slice["addressType"] == "IPv4"
        assert endpoint_slice["endpoints"] == [
            {
                "addresses": ["10.0.0.11"],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "name": "rec-1", "namespace": "ns"},
            }
        ]
        # the target port: with no selector, traffic goes to the slice's port
        assert endpoint_slice["ports"] == [{"name": "redis", "protocol": "TCP", "port": 12000}]
    assert "service.kubernetes.io/headless" not in result.slices[0]["metadata"]["labels"]
    assert result.slices[1]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
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
    assert [s["metadata"]["name"] for s in result.slices] == ["redis-12000", "redis-12000-load-balancer"]
    assert all(s["ports"][0]["port"] == 12000 for s in result.slices)


def test_slices_carry_the_services_owner() -> None:
    owner = {"apiVersion": redb.API_VERSION, "kind": redb.KIND, "name": "a"}
    db = Database(uid=3, name="a", port=12000, master_pod="rec-0", owner=owner)
    result = plan(settings(), [db], PODS, [])
    for obj in result.services + result.slices:
        assert obj["metadata"]["ownerReferences"] == [owner]
    no_owner = plan(settings(), [Database(uid=3, name="a", port=12000, master_pod="rec-0")], PODS, [])
    assert all("ownerReferences" not in s["metadata"] for s in no_owner.slices)


def test_slices_of_the_first_service_type_come_first() -> None:
    dbs = [
        Database(uid=1, name="a", port=12000, master_pod="rec-0"),
        Database(uid=2, name="b", port=12001, master_pod="rec-1"),
    ]
    result = plan(settings(), dbs, PODS, [])
    assert [s["metadata"]["name"] for s in result.slices] == ["a", "b", "a-headless", "b-headless"]


def test_an_announced_ip_beats_the_pods_cached_one() -> None:
    db = Database(uid=1, name="a", port=12000, master_pod="rec-2", master_ip="10.0.0.99")
    result = plan(settings(), [db], PODS, [])
    assert {s["endpoints"][0]["addresses"][0] for s in result.slices} == {"10.0.0.99"}


def test_unknown_master_or_pod_without_ip_keeps_the_slice() -> None:
    pods = [Pod("rec-0", {}, "10.0.0.10"), Pod("rec-1", {}, None)]
    dbs = [
        Database(uid=1, name="a", port=12000, master_pod=None),
        Database(uid=2, name="b", port=12001, master_pod="rec-1"),
        Database(uid=3, name="c", port=12002, master_pod="rec-9"),  # not (yet) listed
    ]
    existing = ["a", "a-headless", "b", "b-headless", "c", "c-headless"]
    result = plan(settings(), dbs, pods, existing, existing)
    assert result.slices == []  # no write ...
    assert result.delete_slices == [] and result.delete_services == []  # ... and no delete


def test_deleted_database_loses_its_slices() -> None:
    db = Database(uid=1, name="a", port=12000, master_pod="rec-0")
    slices = ["a", "a-headless", "gone", "gone-headless"]
    result = plan(settings(), [db], PODS, ["a", "a-headless", "gone"], slices)
    assert result.delete_services == ["gone"]
    assert result.delete_slices == ["gone", "gone-headless"]


def test_label_and_slices_move_on_failover() -> None:
    pods = [
        Pod("rec-0", {"redis.io/bdb-3": "3", "redis.io/bdb-4": "4"}, "10.0.0.10"),
        Pod("rec-1", {}, "10.0.0.11"),
        Pod("rec-2", {}, "10.0.0.12"),
    ]
    dbs = [
        Database(uid=3, name="a", port=12000, master_pod="rec-1"),
        Database(uid=4, name="b", port=12001, master_pod="rec-0"),
    ]
    result = plan(settings(), dbs, pods, ["a", "a-headless", "b", "b-headless"])
    assert result.pod_labels == {"rec-0": {"redis.io/bdb-3": None}, "rec-1": {"redis.io/bdb-3": "3"}}
    targets = {s["metadata"]["name"]: s["endpoints"][0]["targetRef"]["name"] for s in result.slices}
    assert targets == {"a": "rec-1", "a-headless": "rec-1", "b": "rec-0", "b-headless": "rec-0"}


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
    pods = [Pod(f"rec-{i}", dict(labels[i]), f"10.0.0.{i}") for i in range(3)]
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
    # one slice per Service of each database whose master is known, on that master's pod and IP;
    # the Services clients use (the first type) all before the others
    ips = {p.name: p.ip for p in pods}
    expected = {
        name: db.master_pod
        for db in dbs
        if db.master_pod is not None
        for name in service_names(db.name, db.port, (CLUSTER_IP, HEADLESS), BDB_NAME)
    }
    slices = {s["metadata"]["name"]: s for s in result.slices}
    assert len(slices) == len(result.slices)
    assert {name: s["endpoints"][0]["targetRef"]["name"] for name, s in slices.items()} == expected
    assert all(s["endpoints"][0]["addresses"] == [ips[expected[n]]] for n, s in slices.items())
    headless = [s["metadata"]["name"].endswith("-headless") for s in result.slices]
    assert headless == sorted(headless)
    assert all("selector" not in s["spec"] for s in result.services)


def test_switch_master_announcement_parses() -> None:
    from recluster.rigger.masters import Masters

    masters = Masters("rec")
    announcement = b"mydb rec-0.rec.ns.svc.cluster.local 12000 rec-1.rec.ns.svc.cluster.local 12000"
    assert masters.announced(announcement)
    assert not masters.announced(b"ccs a 1 b 2")
    assert not masters.announced(b"garbage")
    assert list(masters.overrides) == ["mydb"]
    assert masters.overrides["mydb"][0] == "rec-1.rec.ns.svc.cluster.local"


def test_rigger_deployment_leaves_a_lost_node_within_seconds() -> None:
    from recluster.api import RedisEnterpriseCluster
    from recluster.operator.specs.rigger import RIGGER_EVICTION_SECONDS, build_rigger_deployment

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
