"""Generated REC and REDB specs pushed through the real apiserver (CRD schema), the operator's
admission webhook and its reconcile loop. The oracle is the validator the operator uses, so the
property is that every layer agrees with it: an invalid spec is refused, names a field, and changes
nothing stored; a valid one is stored and the loop converges on it (status for this generation,
Valid, and the StatefulSet carrying the spec's resources and volumes).

Each example is an update of one REC (and one REDB), so the rules about changes (scale steps,
immutable fields, volumes that only grow) are exercised against the last accepted spec."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.integration.operator.support import webhook_objects

from recluster.api.rec import DEFAULT_NODE_RESOURCES
from recluster.api.validation import validate_rec, validate_redb
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    eventually,
    free_port,
    get,
    kubectl,
    operator_namespace,
    rec_manifest,
    start_operator,
)

pytestmark = pytest.mark.integration

EXAMPLES = settings(
    max_examples=18,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible from the test log
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONVERGE_S = 45.0

cpu = st.sampled_from(["100m", "250m", "500m", "1", "2", "0", "-1", "abc"])
memory = st.sampled_from(["256Mi", "512Mi", "1Gi", "2Gi", "4Gi", "10Ki", "-1Gi", "lots"])
resources = st.fixed_dictionaries(
    {},
    optional={
        "requests": st.fixed_dictionaries({}, optional={"cpu": cpu, "memory": memory}),
        "limits": st.fixed_dictionaries({}, optional={"cpu": cpu, "memory": memory}),
    },
)
rec_specs = st.fixed_dictionaries(
    {"nodes": st.sampled_from([-1, 1, 2, 3, 4, 5, 7])},
    optional={
        "redisEnterpriseNodeResources": resources,
        "persistentSpec": st.fixed_dictionaries(
            {"enabled": st.booleans()},
            optional={"volumeSize": st.sampled_from(["1Gi", "5Gi", "20Gi", "100Gi", "x"]),
                      "enablePersistentVolumeResize": st.booleans()},
        ),
        "uiServiceType": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Bogus"]),
        "license": st.sampled_from(["", "license-text"]),
        "licenseSecretName": st.sampled_from(["lic", ""]),
    },
)
redb_specs = st.fixed_dictionaries(
    {"redisEnterpriseCluster": st.fixed_dictionaries({"name": st.sampled_from(["rec", "rec", "nope"])})},
    optional={
        "memorySize": st.sampled_from(["100MB", "1GB", "50MB", "0", "abc", "256MB"]),
        "replication": st.booleans(),
        "shardCount": st.integers(min_value=0, max_value=3),
        "persistence": st.sampled_from(["disabled", "aofEverySecond", "snapshotEvery1Hour", "sometimes"]),
        "evictionPolicy": st.sampled_from(["volatile-lru", "allkeys-lfu", "noeviction", "lru"]),
        "databasePort": st.sampled_from([10001, 12000, 80, 70000]),
    },
)


@dataclass
class Scene:
    cluster: LocalCluster
    namespace: str
    operator: OperatorProcess
    accepted: dict[str, dict[str, Any]]  # kind -> the last body the apiserver stored


@pytest.fixture(scope="module")
def scene(control_plane: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """A namespace with the operator (webhook on), the webhook configured for it, and a valid REC."""
    workdir = tmp_path_factory.mktemp("generated")
    name = f"recluster-generated-{uuid.uuid4().hex[:6]}"
    with operator_namespace(control_plane) as namespace:
        port = free_port()
        objects = webhook_objects(namespace, port, name)
        kubectl(control_plane, "apply", "-f", "-",
                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        operator = start_operator(control_plane, namespace, workdir, OPERATOR_WEBHOOK_PORT=str(port),
                                  OPERATOR_WEBHOOK_HOST="127.0.0.1", OPERATOR_WEBHOOK_NAMES="127.0.0.1",
                                  OPERATOR_WEBHOOK_CONFIGURATION=name)
        try:
            baseline = rec_manifest()
            eventually("the webhook to admit the baseline REC",
                       lambda: apply(control_plane, namespace, baseline) == "", timeout=60)
            accepted = {"RedisEnterpriseCluster": get(control_plane, namespace, "rec", "rec")}
            yield Scene(control_plane, namespace, operator, accepted)
        finally:
            operator.stop()
            for obj in reversed(objects):
                kubectl(control_plane, "delete", obj["kind"].lower(), obj["metadata"]["name"], "--wait=false",
                        check=False)


def apply(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> str:
    """'' when stored, else the refusal. A server-side apply by one manager: fields left out of the
    new body are removed, so each example is the whole spec."""
    result = kubectl(cluster, "-n", namespace, "apply", "--server-side", "--force-conflicts",
                     "--field-manager=generated", "-f", "-", input=json.dumps(body), check=False)
    return result.stderr.strip() if result.returncode else ""


def spec_of(body: dict[str, Any]) -> dict[str, Any]:
    return {"spec": body.get("spec") or {}, "metadata": {"name": body["metadata"]["name"]}}


def refused_and_unchanged(scene: Scene, kind: str, short: str, name: str, refusal: str,
                          fields: set[str]) -> None:
    assert refusal, f"an invalid {kind} was stored; the validator says: {fields}"
    # the refusal names a field: the validator's, or the CRD schema's path for the same value
    assert any(field in refusal or field.split(".", 1)[-1] in refusal for field in fields), refusal
    stored = get(scene.cluster, scene.namespace, short, name) if kind in scene.accepted else None
    before = scene.accepted.get(kind)
    if before is None:
        assert kubectl(scene.cluster, "-n", scene.namespace, "get", short, name, check=False).returncode != 0
    else:
        assert stored is not None and stored["metadata"]["generation"] == before["metadata"]["generation"]
        assert stored["spec"] == before["spec"]


def statefulset_matches(scene: Scene, spec: dict[str, Any]) -> bool:
    statefulset = get(scene.cluster, scene.namespace, "statefulset", "rec")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    wanted = spec.get("redisEnterpriseNodeResources") or DEFAULT_NODE_RESOURCES
    for section in ("requests", "limits"):
        for key, value in (wanted.get(section) or {}).items():
            if container["resources"].get(section, {}).get(key) != value:
                return False
    persistent = (spec.get("persistentSpec") or {"enabled": False}).get("enabled", True)
    return bool(statefulset["spec"].get("volumeClaimTemplates")) == persistent


def converged(scene: Scene, short: str, name: str, check: Any = None) -> bool:
    body = get(scene.cluster, scene.namespace, short, name)
    status = body.get("status") or {}
    current = status.get("observedGeneration") == body["metadata"]["generation"]
    return current and status.get("specStatus") == "Valid" and (check is None or check())


@EXAMPLES
@given(spec=rec_specs)
def test_generated_rec_specs(scene: Scene, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "app.redislabs.com/v1", "kind": "RedisEnterpriseCluster",
            "metadata": {"name": "rec"}, "spec": spec}
    kind = "RedisEnterpriseCluster"
    errors = validate_rec(spec_of(body), spec_of(scene.accepted[kind]))
    refusal = apply(scene.cluster, scene.namespace, body)
    event("refused" if errors else "stored and converged")
    if errors:
        refused_and_unchanged(scene, kind, "rec", "rec", refusal, {e.field for e in errors})
        return
    assert refusal == "", f"a valid REC was refused: {refusal}"
    stored = get(scene.cluster, scene.namespace, "rec", "rec")
    scene.accepted[kind] = stored
    eventually(f"the operator to converge on generation {stored['metadata']['generation']}",
               lambda: converged(scene, "rec", "rec", lambda: statefulset_matches(scene, stored["spec"])),
               timeout=CONVERGE_S, interval=0.5)


@EXAMPLES
@given(spec=redb_specs)
def test_generated_redb_specs(scene: Scene, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseDatabase",
            "metadata": {"name": "db"}, "spec": spec}
    kind = "RedisEnterpriseDatabase"
    old = scene.accepted.get(kind)
    errors = validate_redb(spec_of(body), spec_of(old) if old else None,
                           cluster_exists=spec["redisEnterpriseCluster"]["name"] == "rec")
    refusal = apply(scene.cluster, scene.namespace, body)
    event("refused" if errors else "stored and taken")
    if errors:
        refused_and_unchanged(scene, kind, "redb", "db", refusal, {e.field for e in errors})
        return
    assert refusal == "", f"a valid REDB was refused: {refusal}"
    stored = get(scene.cluster, scene.namespace, "redb", "db")
    scene.accepted[kind] = stored
    # the REC is not running here (no nodes): the loop still takes the spec (Valid, this generation)
    eventually(f"the REDB loop to take generation {stored['metadata']['generation']}",
               lambda: converged(scene, "redb", "db"), timeout=CONVERGE_S, interval=0.5)
