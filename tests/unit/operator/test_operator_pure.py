"""Pure pieces of the operator: certificates, settings, status, pod ordering, admission messages."""

from __future__ import annotations

import datetime as dt
import ssl
from typing import Any

import pytest
from cryptography import x509

from recluster.api import check_rec
from recluster.api.rec import DEFAULT_SLAVE_HA_GRACE_PERIOD_S, ClusterState
from recluster.certificates import certificate_names
from recluster.clients.lease import LeaderLease
from recluster.operator.accepted import accepted_body
from recluster.operator.rec.cluster import ClusterClient, ClusterView, Credentials, node_pods, policy_changes
from recluster.operator.rec.status import Observed, invalid_status, valid_status
from recluster.operator.rec.steps import next_to_restart, outdated_pods
from recluster.operator.specs.names import tls_names
from recluster.operator.startup import Settings
from recluster.operator.tls import issue_server_certificate
from recluster.operator.webhook import Verdict, rec_admission

pytestmark = pytest.mark.unit

REC: dict[str, Any] = {
    "apiVersion": "app.redislabs.com/v1",
    "kind": "RedisEnterpriseCluster",
    "metadata": {"name": "rec", "namespace": "ns", "uid": "u-1", "generation": 4},
    "spec": {"nodes": 3},
}


def test_node_certificate_is_signed_by_its_ca_for_every_pod_name() -> None:
    rec = check_rec(REC)
    material = issue_server_certificate("rec.ns.svc.cluster.local", tls_names(rec))
    names = certificate_names(material.certificate_pem)
    assert "*.rec.ns.svc.cluster.local" in names and "rec-ui.ns.svc.cluster.local" in names
    cert = x509.load_pem_x509_certificate(material.certificate_pem.encode())
    ca = x509.load_pem_x509_certificate(material.ca_certificate_pem.encode())
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # the standard library accepts it for a pod's DNS name with that CA alone
    context = ssl.create_default_context(cadata=material.ca_certificate_pem)
    assert context.check_hostname
    assert "PRIVATE KEY" not in repr(material)


def test_settings_from_environment() -> None:
    settings = Settings.from_environment(
        {"POD_NAMESPACE": "ops", "WATCH_NAMESPACE": "a, b", "POD_NAME": "op-1"}
    )
    assert (
        settings.namespaces == ("a", "b") and settings.identity == "op-1" and settings.pod_namespace == "ops"
    )
    own = Settings.from_environment({"POD_NAMESPACE": "ops"})
    assert own.namespaces == ("ops",) and own.webhook_names[:3] == (
        "admission",
        "admission.ops",
        "admission.ops.svc",
    )
    assert Settings.from_environment({"POD_NAMESPACE": "x", "OPERATOR_LOG_FORMAT": "json"}).json_logs


def test_status_valid_and_invalid() -> None:
    observed = Observed(
        ClusterState.RUNNING, "3 nodes ready", ready_nodes=3, desired_nodes=3, version="1.0", converging=False
    )
    status = valid_status(REC, observed)
    assert status["state"] == "Running" and status["specStatus"] == "Valid"
    assert status["observedGeneration"] == 4 and status["readyNodes"] == 3 and status["version"] == "1.0"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"SpecValid": "True", "Ready": "True", "Progressing": "False", "Degraded": "False"}
    degraded = valid_status(REC, Observed(ClusterState.RUNNING, "x", 2, 3))
    assert {c["type"]: c["status"] for c in degraded["conditions"]}["Degraded"] == "True"
    invalid = invalid_status(REC, "spec.nodes: must be odd")
    assert invalid["specStatus"] == "Invalid" and invalid["state"] == "Invalid"
    assert invalid["conditions"][0]["message"] == "spec.nodes: must be odd"


def _pod(name: str, revision: str, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"controller-revision-hash": revision}},
        "status": {"podIP": "198.18.0.9", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_rolling_order_highest_first_leader_last() -> None:
    rec = check_rec(REC)
    pods = node_pods(
        rec, [_pod("rec-2", "old"), _pod("rec-0", "old"), _pod("rec-1", "new"), _pod("other", "x")]
    )
    assert [p.name for p in pods] == ["rec-0", "rec-1", "rec-2"]
    outdated = outdated_pods(pods, {"status": {"updateRevision": "new"}})
    assert [p.name for p in outdated] == ["rec-0", "rec-2"]
    client = ClusterClient(rec, "", Credentials("u", "p"), "cluster.local")
    view = ClusterView(
        pods=pods, nodes=[{"name": "rec-2.rec.ns.svc.cluster.local", "role": "master", "uid": 3}]
    )
    assert next_to_restart(outdated, view, client).name == "rec-0"
    assert "secret" not in repr(Credentials("u", "secret-password"))


def test_a_member_whose_pod_was_scaled_away_is_an_orphan() -> None:
    rec = check_rec(REC)
    pods = node_pods(rec, [_pod("rec-0", "r"), _pod("rec-1", "r"), _pod("rec-2", "r")])
    client = ClusterClient(rec, "", Credentials("u", "p"), "cluster.local")
    nodes = [{"name": f"rec-{i}.rec.ns.svc.cluster.local", "uid": i + 1} for i in (0, 1, 2, 3)]
    nodes.append({"name": "other-5.rec.ns.svc.cluster.local", "uid": 9})  # not one of our pods' names
    view = ClusterView(pods=pods, nodes=nodes)
    assert client.orphaned_nodes(view, 3) == [4]
    # while the StatefulSet still has 4 replicas, rec-3's pod may come back: not an orphan yet
    assert client.orphaned_nodes(view, 4) == []
    with_pod = ClusterView(pods=[*pods, *node_pods(rec, [_pod("rec-3", "r")])], nodes=nodes)
    assert client.orphaned_nodes(with_pod, 3) == []


def test_accepted_spec_annotation_round_trip() -> None:
    body = {
        **REC,
        "metadata": {
            **REC["metadata"],
            "annotations": {"app.redislabs.com/last-accepted-spec": '{"nodes":5}'},
        },
    }
    accepted = accepted_body(body)
    assert accepted is not None and accepted["spec"] == {"nodes": 5}
    assert accepted_body(REC) is None


def test_admission_names_the_field() -> None:
    assert rec_admission(REC, None).refusal is None
    message = rec_admission({**REC, "spec": {"nodes": 2}}, None).refusal
    assert message is not None and "spec.nodes" in message
    # a step down below a majority of the old count is refused on update only
    shrink = rec_admission({**REC, "spec": {"nodes": 3}}, {**REC, "spec": {"nodes": 7}}).refusal
    assert shrink is not None and "spec.nodes" in shrink
    deleting = {
        **REC,
        "metadata": {**REC["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {},
    }
    assert rec_admission({**deleting, "spec": {"nodes": 2, "certificates": {"a": "b"}}}, None) == Verdict()


def test_lease_body_counts_transitions() -> None:
    lease = LeaderLease(kube=None, namespace="ns", name="op", identity="me", seconds=15)  # type: ignore[arg-type]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = lease._body(None, now)
    assert first["spec"]["holderIdentity"] == "me" and first["spec"]["leaseTransitions"] == 0
    taken = lease._body(
        {"metadata": {"resourceVersion": "7"}, "spec": {"holderIdentity": "other", "leaseTransitions": 2}},
        now,
    )
    assert taken["spec"]["leaseTransitions"] == 3 and taken["metadata"]["resourceVersion"] == "7"
    assert taken["spec"]["acquireTime"] == "2026-01-01T00:00:00.000000Z"


def test_resource_paths() -> None:
    from recluster.clients.kubernetes import resource_path

    assert resource_path("v1", "Secret", "ns", "rec") == "/api/v1/namespaces/ns/secrets/rec"
    assert resource_path("apps/v1", "StatefulSet", "ns") == "/apis/apps/v1/namespaces/ns/statefulsets"
    assert (
        resource_path("app.redislabs.com/v1", "RedisEnterpriseCluster", "ns", "rec")
        == "/apis/app.redislabs.com/v1/namespaces/ns/redisenterpriseclusters/rec"
    )


def test_deleting_for_counts_from_the_deletion_timestamp() -> None:
    from recluster.operator.rec.delete import _deleting_for

    assert _deleting_for(REC) == 0.0
    long_ago = {**REC, "metadata": {**REC["metadata"], "deletionTimestamp": "2020-01-01T00:00:00Z"}}
    assert _deleting_for(long_ago) > 1e6


DEFAULT_GRACE = DEFAULT_SLAVE_HA_GRACE_PERIOD_S


@pytest.mark.parametrize(("spec", "actual", "changes"), [
    ({}, {"slave_ha": True, "slave_ha_grace_period": DEFAULT_GRACE}, {}),
    ({}, {"slave_ha": False, "slave_ha_grace_period": 600},
     {"slave_ha": True, "slave_ha_grace_period": DEFAULT_GRACE}),
    ({"slaveHA": {"slaveHAGracePeriod": 1800}}, {"slave_ha": True, "slave_ha_grace_period": DEFAULT_GRACE},
     {"slave_ha_grace_period": 1800}),
    ({"slaveHA": {"slaveHAGracePeriod": 0}}, {"slave_ha": True, "slave_ha_grace_period": 0}, {}),
    ({"slaveHA": {}}, {}, {"slave_ha": True, "slave_ha_grace_period": DEFAULT_GRACE}),
])
def test_cluster_policy_follows_slave_ha(spec: dict[str, Any], actual: dict[str, Any],
                                         changes: dict[str, Any]) -> None:
    assert policy_changes(check_rec({**REC, "spec": {"nodes": 3, **spec}}), actual) == changes
