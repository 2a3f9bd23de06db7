"""The operator against the local control plane (no nodes needed), running on the host with only
its ServiceAccount's token and the RBAC of deploy/: every child with the contract's names, labels
and owner references; validation in the loop; drift repair; deletion; one leader of two."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.local.support import apply
from tests.integration.operator.support import events, exists, wait_gone

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    eventually,
    free_port,
    get,
    kubectl,
    operator_namespace,
    rec_manifest,
    rec_status,
    start_operator,
)

pytestmark = pytest.mark.integration

CHILDREN = [
    ("serviceaccount", "rec"),
    ("role", "rec"),
    ("rolebinding", "rec"),
    ("secret", "rec"),
    ("secret", "rec-tls"),
    ("service", "rec"),
    ("service", "rec-ui"),
    ("service", "rec-prom"),
    ("statefulset", "rec"),
    ("poddisruptionbudget", "rec"),
    ("deployment", "rec-services-rigger"),
]


@pytest.fixture
def namespace(control_plane: LocalCluster) -> Iterator[str]:
    with operator_namespace(control_plane) as name:
        yield name


@pytest.fixture
def operator(control_plane: LocalCluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = start_operator(control_plane, namespace, tmp_path)
    try:
        yield process
    finally:
        process.stop()


def _obj(cluster: LocalCluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = get(cluster, namespace, kind, name)
    return result


def _no_failures(operator: OperatorProcess) -> None:
    """The operator never failed a reconcile (a missing permission shows up as a 403 here)."""
    for line in operator.log().splitlines():
        try:
            message = str(json.loads(line).get("message", ""))
        except ValueError:
            message = line
        assert "reconcile of" not in message and "Forbidden" not in message and "HTTP 403" not in message, (
            message
        )


def test_children_names_labels_owners_and_status(
    control_plane: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(control_plane, namespace, rec_manifest())
    eventually(
        "every child", lambda: all(exists(control_plane, namespace, k, n) for k, n in CHILDREN), timeout=90
    )
    rec = _obj(control_plane, namespace, "rec", "rec")
    for kind, name in CHILDREN:
        obj = _obj(control_plane, namespace, kind, name)
        labels = obj["metadata"]["labels"]
        assert labels["app"] == "redis-enterprise" and labels["redis.io/cluster"] == "rec", (kind, labels)
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == rec["metadata"]["uid"] and owner["kind"] == "RedisEnterpriseCluster"
        assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    assert not exists(control_plane, namespace, "deployment", "rec-service-broker")

    secret = _obj(control_plane, namespace, "secret", "rec")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) >= 32
    assert base64.b64decode(secret["data"]["username"]).decode() == "demo@redis.com"
    tls = _obj(control_plane, namespace, "secret", "rec-tls")
    assert {"tls.crt", "tls.key", "ca.crt"} <= set(tls["data"])
    sts = _obj(control_plane, namespace, "statefulset", "rec")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["serviceName"] == "rec"
    node = sts["spec"]["template"]["spec"]["containers"][0]
    assert node["readinessProbe"]["httpGet"]["path"] == "/v1/ready"
    assert "password" not in json.dumps(node.get("env", []))

    eventually(
        "status PendingCreation/Valid",
        lambda: rec_status(control_plane, namespace).get("specStatus") == "Valid",
    )
    status = rec_status(control_plane, namespace)
    assert status["state"] in ("PendingCreation", "BootstrappingFirstPod")
    assert status["observedGeneration"] == rec["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Progressing", "Degraded", "SpecValid"}
    eventually("a StatusChange event", lambda: events(control_plane, namespace, "StatusChange"))
    assert password not in operator.log()
    assert 'recluster_operator_reconciles_total{kind="RedisEnterpriseCluster"}' in operator.metrics()
    _no_failures(operator)

    # the secret is never rewritten: the password stays what it was
    kubectl(
        control_plane,
        "-n",
        namespace,
        "patch",
        "rec",
        "rec",
        "--type=merge",
        "-p",
        '{"spec":{"uiServiceType":"NodePort"}}',
    )
    eventually(
        "rec-ui NodePort",
        lambda: _obj(control_plane, namespace, "service", "rec-ui")["spec"]["type"] == "NodePort",
    )
    assert _obj(control_plane, namespace, "secret", "rec")["data"]["password"] == secret["data"]["password"]


def test_drift_is_repaired(control_plane: LocalCluster, namespace: str, operator: OperatorProcess) -> None:
    apply(control_plane, namespace, rec_manifest())
    eventually("the StatefulSet", lambda: exists(control_plane, namespace, "statefulset", "rec"), timeout=90)
    eventually("rec-ui", lambda: exists(control_plane, namespace, "service", "rec-ui"), timeout=90)
    first_uid = _obj(control_plane, namespace, "service", "rec-ui")["metadata"]["uid"]
    kubectl(control_plane, "-n", namespace, "delete", "service", "rec-ui")
    eventually(
        "rec-ui recreated",
        lambda: (
            exists(control_plane, namespace, "service", "rec-ui")
            and _obj(control_plane, namespace, "service", "rec-ui")["metadata"]["uid"] != first_uid
        ),
        timeout=60,
    )
    kubectl(control_plane, "-n", namespace, "scale", "statefulset", "rec", "--replicas=1")
    eventually(
        "replicas back to 3",
        lambda: _obj(control_plane, namespace, "statefulset", "rec")["spec"]["replicas"] == 3,
        timeout=60,
    )
    kubectl(control_plane, "-n", namespace, "delete", "poddisruptionbudget", "rec")
    eventually(
        "PDB recreated", lambda: exists(control_plane, namespace, "poddisruptionbudget", "rec"), timeout=60
    )
    _no_failures(operator)


def test_invalid_spec_touches_nothing_until_fixed(
    control_plane: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(control_plane, namespace, rec_manifest(nodes=2))
    eventually(
        "specStatus Invalid", lambda: rec_status(control_plane, namespace).get("specStatus") == "Invalid"
    )
    assert rec_status(control_plane, namespace)["state"] == "Invalid"
    (warning,) = eventually(
        "an InvalidConfiguration event", lambda: events(control_plane, namespace, "InvalidConfiguration")
    )
    assert warning["type"] == "Warning" and "spec.nodes" in warning["message"]
    for kind, name in CHILDREN:
        assert not exists(control_plane, namespace, kind, name), (kind, name)

    kubectl(
        control_plane, "-n", namespace, "patch", "rec", "rec", "--type=merge", "-p", '{"spec":{"nodes":3}}'
    )
    eventually("specStatus Valid", lambda: rec_status(control_plane, namespace).get("specStatus") == "Valid")
    eventually("the StatefulSet", lambda: exists(control_plane, namespace, "statefulset", "rec"))

    # an invalid change of a running REC changes no child either
    kubectl(
        control_plane,
        "-n",
        namespace,
        "patch",
        "rec",
        "rec",
        "--type=merge",
        "-p",
        '{"spec":{"nodes":4,"uiServiceType":"LoadBalancer"}}',
    )
    eventually(
        "specStatus Invalid again",
        lambda: rec_status(control_plane, namespace).get("specStatus") == "Invalid",
    )
    assert _obj(control_plane, namespace, "service", "rec-ui")["spec"]["type"] == "ClusterIP"
    assert _obj(control_plane, namespace, "statefulset", "rec")["spec"]["replicas"] == 3
    _no_failures(operator)


def test_deletion_removes_children(
    control_plane: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(control_plane, namespace, rec_manifest())
    eventually(
        "the finalizer",
        lambda: (
            "redbfinalizer.redisenterpriseclusters.app.redislabs.com"
            in (_obj(control_plane, namespace, "rec", "rec")["metadata"].get("finalizers") or [])
        ),
        timeout=90,
    )
    eventually("the StatefulSet", lambda: exists(control_plane, namespace, "statefulset", "rec"), timeout=90)
    kubectl(control_plane, "-n", namespace, "delete", "rec", "rec", "--wait=false")
    wait_gone("the REC", lambda: exists(control_plane, namespace, "rec", "rec"), timeout=180)
    for kind, name in CHILDREN:
        wait_gone(f"{kind}/{name}", lambda kind=kind, name=name: exists(control_plane, namespace, kind, name))
    _no_failures(operator)


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def test_one_leader_of_two(control_plane: LocalCluster, namespace: str, tmp_path: Path) -> None:
    """One replica acts; the standby is alive, scraped and not ready (/readyz), and does not listen for
    webhook calls, so the admission Service (which selects every operator pod) never sends it one."""
    hooks = {"op-a": free_port(), "op-b": free_port()}

    def webhook(identity: str) -> dict[str, str]:
        return {"OPERATOR_WEBHOOK_PORT": str(hooks[identity]), "OPERATOR_WEBHOOK_HOST": "127.0.0.1"}

    first = start_operator(control_plane, namespace, tmp_path, identity="op-a", **webhook("op-a"))
    second = None
    try:
        eventually("op-a leads", lambda: "recluster_operator_leader 1.0" in first.metrics(), timeout=30)
        eventually("op-a ready", lambda: first.ready()[0] == 200, timeout=30)
        assert _listens(hooks["op-a"])
        second = start_operator(control_plane, namespace, tmp_path, identity="op-b", **webhook("op-b"))
        status, body = second.ready()
        assert status == 503 and "standby" in body["reason"], body
        assert not _listens(hooks["op-b"])
        apply(control_plane, namespace, rec_manifest())
        eventually(
            "the StatefulSet", lambda: exists(control_plane, namespace, "statefulset", "rec"), timeout=90
        )
        assert "recluster_operator_leader 0.0" in second.metrics()
        assert "recluster_operator_reconciles_total{" not in second.metrics()  # a standby does nothing
        first.stop(kill=True)  # no release: the standby waits for the Lease to expire
        eventually("op-b takes over", lambda: "recluster_operator_leader 1.0" in second.metrics(), timeout=60)
        eventually("op-b ready", lambda: second.ready()[0] == 200, timeout=30)
        assert _listens(hooks["op-b"])
        kubectl(control_plane, "-n", namespace, "delete", "service", "rec-ui")
        eventually(
            "rec-ui recreated by op-b",
            lambda: exists(control_plane, namespace, "service", "rec-ui"),
            timeout=60,
        )
        lease = _obj(control_plane, namespace, "lease", "redis-enterprise-operator")
        assert lease["spec"]["holderIdentity"] == "op-b"
    finally:
        first.stop()
        if second is not None:
            second.stop()
