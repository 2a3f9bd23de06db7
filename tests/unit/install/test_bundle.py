"""deploy/bundle.yaml: current with its parts, namespace-free, and carrying the contract's Deployment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from recluster.install.bundle import (
    ADMISSION_PARTS,
    NAMESPACE_PLACEHOLDER,
    PARTS,
    admission_manifests,
    bundle_text,
    render_bundle,
)
from recluster.operator.startup import DEFAULT_IMAGE, Settings

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_bundle_is_current() -> None:
    assert (DEPLOY / "bundle.yaml").read_text() == bundle_text(DEPLOY), "stale: run `recluster bundle`"


def test_every_yaml_in_deploy_is_in_the_bundle_or_the_admission_step() -> None:
    # deploy/monitoring/: the monitoring pack, applied on its own (test_monitoring_pack.py)
    files = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*.yaml")} - {"bundle.yaml"}
    assert {f for f in files if not f.startswith("monitoring/")} == set(PARTS) | set(ADMISSION_PARTS)


def test_bundle_objects_in_install_order_and_namespace_free() -> None:
    objects = documents((DEPLOY / "bundle.yaml").read_text())
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("CustomResourceDefinition", "redisenterpriseclusters.app.redislabs.com"),
        ("CustomResourceDefinition", "redisenterprisedatabases.app.redislabs.com"),
        ("ServiceAccount", "redis-enterprise-operator"),
        ("Role", "redis-enterprise-operator"),
        ("RoleBinding", "redis-enterprise-operator"),
        ("Service", "admission"),
        ("Service", "redis-enterprise-operator-metrics"),
        ("Deployment", "redis-enterprise-operator"),
    ]
    assert all("namespace" not in o["metadata"] for o in objects)  # `kubectl apply -n` decides


def test_the_metrics_service_reaches_the_operators_metrics_port() -> None:
    objects = documents((DEPLOY / "bundle.yaml").read_text())
    (service,) = [o for o in objects if o["metadata"]["name"] == "redis-enterprise-operator-metrics"]
    deployment = objects[-1]
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics"
    (container,) = pod["spec"]["containers"]
    (target,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert target["containerPort"] == Settings.from_environment({"POD_NAMESPACE": "x"}).http_port == 8080
    # the label a ServiceMonitor selects it by
    assert service["metadata"]["labels"]["name"] == "redis-enterprise-operator-metrics"


def test_the_pods_the_operator_creates_default_to_its_own_image() -> None:
    deployment = documents((DEPLOY / "bundle.yaml").read_text())[-1]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OPERATOR_DEFAULT_IMAGE"] == container["image"] == DEFAULT_IMAGE
    assert env["OPERATOR_DEFAULT_IMAGE_PULL_POLICY"] == container["imagePullPolicy"]


def test_operator_deployment_is_the_contracts() -> None:
    deployment = documents((DEPLOY / "bundle.yaml").read_text())[-1]
    assert deployment["metadata"]["labels"]["name"] == "redis-enterprise-operator"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "redis-enterprise-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    env = {e["name"] for e in container["env"]}
    assert {"WATCH_NAMESPACE", "POD_NAME", "POD_NAMESPACE", "OPERATOR_NAME"} <= env
    assert container["envFrom"] == [
        {"configMapRef": {"name": "operator-environment-config", "optional": True}}
    ]
    assert container["livenessProbe"] and container["readinessProbe"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}


def test_a_part_naming_the_namespace_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match=r"deploy/x\.yaml names OPERATOR_NAMESPACE"):
        render_bundle([("x.yaml", f"kind: Role\nmetadata:\n  namespace: {NAMESPACE_PLACEHOLDER}\n")])


DNS_LABEL = re.compile(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")  # stated here, not imported
LABEL = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")


@given(LABEL)
def test_admission_manifests_name_the_operators_namespace(namespace: str) -> None:
    text = admission_manifests(DEPLOY, namespace)
    assert NAMESPACE_PLACEHOLDER not in text
    objects = {o["kind"]: o for o in documents(text)}
    assert set(objects) == {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"}
    assert objects["ClusterRoleBinding"]["subjects"][0]["namespace"] == namespace
    for hook in objects["ValidatingWebhookConfiguration"]["webhooks"]:
        assert hook["clientConfig"]["service"]["namespace"] == namespace
        assert "caBundle" not in hook["clientConfig"]  # the operator's, never blanked by a re-apply
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [namespace]


@given(st.text(max_size=70).filter(lambda s: not DNS_LABEL.match(s)))
def test_admission_manifests_refuse_a_bad_namespace(namespace: str) -> None:
    with pytest.raises(ValueError, match="must be a DNS-1123 label"):
        admission_manifests(DEPLOY, namespace)
