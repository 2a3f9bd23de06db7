"""Properties every built object must have, whatever the REC: ownership, labels, selectors that
match, no secret outside the Secret, no shared state between objects, and purity."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.specs.conftest import FULL_REC, TLS

from recluster.api import RedisEnterpriseCluster, check_rec
from recluster.operator.specs import (
    build_credentials_secret,
    build_rec_children,
    build_role,
    build_statefulset,
    object_key,
)
from recluster.operator.specs.names import broker_tls_names, node_address, tls_names

pytestmark = pytest.mark.unit

BuildAll = Callable[[RedisEnterpriseCluster], list[dict[str, Any]]]
IMAGE = "recluster:0.1.0"


def by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


def test_minimal_rec_children(minimal_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in build_all(minimal_rec)] == [
        ("ServiceAccount", "rec"),
        ("Role", "rec"),
        ("RoleBinding", "rec"),
        ("Secret", "rec"),
        ("Secret", "rec-tls"),
        ("Service", "rec"),
        ("Service", "rec-ui"),
        ("Service", "rec-prom"),
        ("StatefulSet", "rec"),
        ("PodDisruptionBudget", "rec"),
        ("Deployment", "rec-services-rigger"),
    ]


def test_full_rec_adds_the_broker(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    ordered = [(obj["kind"], obj["metadata"]["name"]) for obj in build_all(full_rec)]
    broker_objects = [
        ("Secret", "prod-service-broker"),  # its own credential and certificate, before its pod
        ("Secret", "prod-service-broker-tls"),
        ("PersistentVolumeClaim", "prod-service-broker"),
        ("Deployment", "prod-service-broker"),
        ("Service", "prod-service-broker"),
    ]
    assert ordered[-len(broker_objects):] == broker_objects
    objects = by_key(build_all(full_rec))
    broker = objects[("Deployment", "prod-service-broker")]
    service = objects[("Service", "prod-service-broker")]
    assert service["spec"]["selector"].items() <= broker["spec"]["template"]["metadata"]["labels"].items()
    pvc = objects[("PersistentVolumeClaim", "prod-service-broker")]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert pvc["spec"]["storageClassName"] == "standard"


def test_the_brokers_secrets(full_rec: RedisEnterpriseCluster) -> None:
    """Its own credential (never the admin's) and its serving certificate with the CA platforms
    trust; made only when given (an existing one is never rebuilt), never without the broker."""
    objects = by_key(build_rec_children(full_rec, image=IMAGE, password_secret_exists=True,
                                        tls_secret_exists=True, broker_password="pw-for-platforms",
                                        broker_tls=TLS))
    auth = objects[("Secret", "prod-service-broker")]
    decoded = {key: base64.b64decode(value).decode() for key, value in auth["data"].items()}
    assert decoded == {"username": "broker", "password": "pw-for-platforms"}
    tls = objects[("Secret", "prod-service-broker-tls")]
    assert tls["type"] == "kubernetes.io/tls" and set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert auth["metadata"]["labels"]["redis.io/role"] == "service-broker"
    kept = by_key(build_rec_children(full_rec, image=IMAGE, password_secret_exists=True,
                                     tls_secret_exists=True))
    assert ("Secret", "prod-service-broker") not in kept and ("Secret", "prod-service-broker-tls") not in kept
    assert ("Deployment", "prod-service-broker") in kept
    off = check_rec({**FULL_REC, "spec": {**FULL_REC["spec"], "serviceBrokerSpec": {"enabled": False}}})
    none = by_key(build_rec_children(off, image=IMAGE, password_secret_exists=True, tls_secret_exists=True,
                                     broker_password="pw", broker_tls=TLS))
    assert not [key for key in none if key[1].startswith("prod-service-broker")]
    assert broker_tls_names(full_rec) == [
        "prod-service-broker.data.svc.cluster.local", "prod-service-broker.data.svc",
        "prod-service-broker.data", "prod-service-broker"]


def test_existing_secret_is_never_rebuilt(minimal_rec: RedisEnterpriseCluster) -> None:
    objects = build_rec_children(
        minimal_rec, image=IMAGE, password_secret_exists=True, tls_secret_exists=True
    )
    assert ("Secret", "rec") not in by_key(objects) and ("Secret", "rec-tls") not in by_key(objects)
    with pytest.raises(ValueError, match="password"):
        build_rec_children(minimal_rec, image=IMAGE, password_secret_exists=False, tls_secret_exists=True)
    with pytest.raises(ValueError, match="certificate"):
        build_rec_children(minimal_rec, image=IMAGE, password_secret_exists=True, tls_secret_exists=False)


def test_every_object_is_owned_and_labelled(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    for obj in build_all(full_rec):
        meta = obj["metadata"]
        assert meta["namespace"] == "data"
        assert meta["labels"]["app"] == "redis-enterprise"
        assert meta["labels"]["redis.io/cluster"] == "prod"
        assert meta["labels"]["team"] == "data", obj["kind"]
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "app.redislabs.com/v1",
                "kind": "RedisEnterpriseCluster",
                "name": "prod",
                "uid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_node_volumes_outlive_the_rec(full_rec: RedisEnterpriseCluster) -> None:
    sts = build_statefulset(full_rec, image=IMAGE)
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    (template,) = sts["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "redis-enterprise-storage"
    assert "ownerReferences" not in template["metadata"]
    assert "team" not in template["metadata"]["labels"]  # claim templates are immutable
    assert template["spec"]["storageClassName"] == "fast-ssd"
    assert template["spec"]["resources"]["requests"]["storage"] == "40Gi"


def test_volume_size_defaults_to_five_times_memory() -> None:
    rec = check_rec(
        {"metadata": {"name": "rec", "namespace": "ns"}, "spec": {"persistentSpec": {"enabled": True}}}
    )
    (template,) = build_statefulset(rec, image=IMAGE)["spec"]["volumeClaimTemplates"]
    assert template["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert "storageClassName" not in template["spec"]


def test_without_persistence_there_is_no_claim(minimal_rec: RedisEnterpriseCluster) -> None:
    sts = build_statefulset(minimal_rec, image=IMAGE)
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {volume["name"]: volume for volume in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["redis-enterprise-storage"] == {"name": "redis-enterprise-storage", "emptyDir": {}}


def test_node_pods(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    objects = by_key(build_all(full_rec))
    sts = objects[("StatefulSet", "prod")]
    pod = sts["spec"]["template"]["spec"]
    (node, *_) = pod["containers"]
    assert sts["spec"]["serviceName"] == "prod"
    assert objects[("Service", "prod")]["spec"]["clusterIP"] == "None"
    assert pod["securityContext"]["runAsUser"] == 1001 and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert node["name"] == "redis-enterprise-node"
    assert node["command"] == ["recluster", "node"]
    assert {port["name"]: port["containerPort"] for port in node["ports"]} == {
        "api": 9443,
        "sentinel": 8001,
        "metrics": 8070,
        "ui": 8443,
    }
    assert node["readinessProbe"]["httpGet"] == {"path": "/v1/ready", "port": "api", "scheme": "HTTPS"}
    env = {variable["name"]: variable.get("value") for variable in node["env"]}
    assert env["RECLUSTER_NODE_NAME"] == "$(POD_NAME).prod.data.svc.cluster.local"
    assert node_address(full_rec, "prod-0") == "prod-0.prod.data.svc.cluster.local"
    assert pod["nodeSelector"] == {"pool": "redis"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["terminationGracePeriodSeconds"] == 7200
    assert node["image"] == "registry.example/recluster:0.1.1"


def test_default_anti_affinity_is_one_node_per_host(minimal_rec: RedisEnterpriseCluster) -> None:
    affinity = build_statefulset(minimal_rec, image=IMAGE)["spec"]["template"]["spec"]["affinity"]
    (term,) = affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["redis.io/role"] == "node"


def test_spec_anti_affinity_replaces_the_default() -> None:
    custom = {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"redis.io/role": "node"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
    rec = check_rec({"metadata": {"name": "rec", "namespace": "ns"}, "spec": {"podAntiAffinity": custom}})
    affinity = build_statefulset(rec, image=IMAGE)["spec"]["template"]["spec"]["affinity"]
    assert affinity == {"podAntiAffinity": custom}


def test_selectors_match_pods_and_ignore_extra_labels(
    full_rec: RedisEnterpriseCluster, build_all: BuildAll
) -> None:
    objects = by_key(build_all(full_rec))
    node_labels = objects[("StatefulSet", "prod")]["spec"]["template"]["metadata"]["labels"]
    rigger_labels = objects[("Deployment", "prod-services-rigger")]["spec"]["template"]["metadata"]["labels"]
    for kind, name in [("Service", "prod"), ("Service", "prod-ui"), ("Service", "prod-prom")]:
        selector = objects[(kind, name)]["spec"]["selector"]
        assert selector.items() <= node_labels.items() and "team" not in selector
        assert not selector.items() <= rigger_labels.items()
    for kind, name in [("StatefulSet", "prod"), ("PodDisruptionBudget", "prod")]:
        match = objects[(kind, name)]["spec"]["selector"]["matchLabels"]
        assert match.items() <= node_labels.items() and "team" not in match


def test_ui_service(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    ui = by_key(build_all(full_rec))[("Service", "prod-ui")]
    assert ui["spec"]["type"] == "LoadBalancer"
    assert ui["metadata"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    assert ui["spec"]["ports"] == [{"name": "ui", "port": 8443, "targetPort": "ui", "protocol": "TCP"}]


def test_pdb_and_prom(minimal_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    objects = by_key(build_all(minimal_rec))
    assert objects[("PodDisruptionBudget", "rec")]["spec"]["maxUnavailable"] == 1
    prom = objects[("Service", "rec-prom")]
    assert prom["spec"]["clusterIP"] == "None"
    assert prom["metadata"]["labels"]["redis.io/service"] == "prom-metrics"
    assert prom["spec"]["ports"][0]["port"] == 8070


def test_rigger_runs_under_the_rec_account(minimal_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    rigger = by_key(build_all(minimal_rec))[("Deployment", "rec-services-rigger")]
    pod = rigger["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rec"
    assert pod["containers"][0]["command"] == ["recluster", "rigger"]
    # two replicas spread over nodes, a new one up before an old one goes: a standby is always there
    assert rigger["spec"]["replicas"] == 2
    assert rigger["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    spread = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert spread["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    term = spread["podAffinityTerm"]
    assert term["labelSelector"]["matchLabels"] == rigger["spec"]["selector"]["matchLabels"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["RECLUSTER_RIGGER_LEASE_NAME"] == "rec-services-rigger"


def test_role_is_least_privilege(minimal_rec: RedisEnterpriseCluster) -> None:
    rules = build_role(minimal_rec)["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any("*" in entry for entry in granted)
    # secrets: patch only (the rigger keeps a database secret's service_names); it can read none
    assert {verb for _, resource, verb in granted if resource == "secrets"} == {"patch"}
    assert ("", "services", "create") in granted and ("", "pods", "patch") in granted
    # leases: create any (it cannot be limited by name), read and renew only its own
    named = [rule for rule in rules if "leases" in rule["resources"] and "update" in rule["verbs"]]
    assert [rule["resourceNames"] for rule in named] == [["rec-services-rigger"]]


def test_credentials_secret(full_rec: RedisEnterpriseCluster) -> None:
    secret = build_credentials_secret(full_rec, password="pw")
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert decoded == {
        "username": "admin@example.com",
        "password": "pw",
        "license": "----- LICENSE KEY TEXT -----",
    }


def _secret_free(obj: dict[str, Any]) -> bool:
    text = json.dumps(obj)
    for secret in (b"s3cret-Passw0rd", b"br0ker-Passw0rd"):
        if secret.decode() in text or base64.b64encode(secret).decode() in text:
            return False
    return "LICENSE KEY" not in text


def test_secrets_only_in_secrets(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    for obj in build_all(full_rec):
        if obj["kind"] != "Secret":
            assert _secret_free(obj), obj["kind"]
        for container in _containers(obj):
            for variable in container.get("env", []):
                assert "secretKeyRef" not in variable.get("valueFrom", {})
            assert not container.get("envFrom")


def _containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    template = obj.get("spec", {}).get("template", {})
    yield from template.get("spec", {}).get("containers", [])


def _ids(value: Any, seen: dict[int, str], path: str) -> Iterator[str]:
    if isinstance(value, dict | list):
        if id(value) in seen:
            yield f"{path} is the same object as {seen[id(value)]}"
        seen[id(value)] = path
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _ids(item, seen, f"{path}.{key}")


def test_no_shared_mutable_state(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    seen: dict[int, str] = {}
    spec_ids: dict[int, str] = {}
    list(_ids(full_rec.spec.__dict__, spec_ids, "spec"))
    shared = [problem for i, obj in enumerate(build_all(full_rec)) for problem in _ids(obj, seen, f"[{i}]")]
    assert shared == []
    assert not set(seen) & set(spec_ids), "an object shares a dict or list with the REC model"


def test_builders_are_pure(full_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    before = copy.deepcopy(full_rec.model_dump())
    assert build_all(full_rec) == build_all(full_rec)
    assert full_rec.model_dump() == before


def test_object_key(minimal_rec: RedisEnterpriseCluster, build_all: BuildAll) -> None:
    keys = [object_key(obj) for obj in build_all(minimal_rec)]
    assert len(keys) == len(set(keys))
    assert ("apps/v1", "StatefulSet", "rec") in keys


def test_tls_names_cover_every_node(minimal_rec: RedisEnterpriseCluster) -> None:
    names = tls_names(minimal_rec)
    assert "*.rec.ns.svc.cluster.local" in names and "rec-ui.ns.svc.cluster.local" in names


label_values = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")


@settings(max_examples=30, deadline=None)
@given(
    nodes=st.integers(min_value=1, max_value=20).map(lambda k: 2 * k + 1),
    extra=st.dictionaries(st.sampled_from(["team", "env", "example.com/tier"]), label_values, max_size=3),
    name=st.from_regex(r"\A[a-z][a-z0-9-]{0,45}[a-z0-9]\Z"),
)
def test_any_valid_rec_builds_consistent_objects(nodes: int, extra: dict[str, str], name: str) -> None:
    rec = check_rec(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": "u"},
            "spec": {"nodes": nodes, "extraLabels": extra},
        }
    )
    objects = build_rec_children(rec, image=IMAGE, password_secret_exists=True, tls_secret_exists=True)
    sts = by_key(objects)[("StatefulSet", name)]
    assert sts["spec"]["replicas"] == nodes
    for obj in objects:
        assert extra.items() <= obj["metadata"]["labels"].items()
        assert len(obj["metadata"]["name"]) <= 63
        selector = obj.get("spec", {}).get("selector", {})
        assert not set(extra) & set(selector.get("matchLabels", selector))


def test_immutable_statefulset_changes_are_named(full_rec: RedisEnterpriseCluster) -> None:
    from recluster.operator.specs.statefulset import statefulset_immutable_changes

    desired = build_statefulset(full_rec, image=IMAGE)
    assert statefulset_immutable_changes(desired, copy.deepcopy(desired)) == []
    actual = copy.deepcopy(desired)
    actual["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "20Gi"
    actual["spec"]["serviceName"] = "other"
    assert statefulset_immutable_changes(desired, actual) == ["spec.serviceName", "spec.volumeClaimTemplates"]
    actual = copy.deepcopy(desired)
    actual["spec"]["replicas"] = 7
    actual["spec"]["template"]["metadata"]["labels"]["new"] = "x"
    assert statefulset_immutable_changes(desired, actual) == []
    bigger = copy.deepcopy(desired)
    bigger["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "60Gi"
    assert statefulset_immutable_changes(bigger, desired) == ["spec.volumeClaimTemplates"]
