"""Every manifest we ship, validated by the real apiserver of the pinned Kubernetes (v1.34.4):
`kubectl apply --dry-run=server --validate=strict` (the apiserver decodes each object strictly, so an
unknown or duplicate field is an error, runs defaulting, validation and admission, and stores
nothing). Covered: deploy/bundle.yaml, the admission step for a namespace, every file in deploy/ on
its own, every example in examples/ (against the real CRDs), and `helm template` of
charts/recluster for each kind of values. A negative control shows the validation bites."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from recluster.install.bundle import NAMESPACE_PLACEHOLDER, admission_manifests
from recluster.local.cluster import LocalCluster
from recluster.local.harness import ensure_crds, kubectl
from recluster.local.helm import ensure_helm
from recluster.local.paths import repo_dir
from recluster.operator.tls import issue_server_certificate

pytestmark = pytest.mark.integration

REPO = Path(repo_dir())
DEPLOY = REPO / "deploy"
EXAMPLES = REPO / "examples"
CHART = REPO / "charts" / "recluster"
RELEASE = "recluster"
DRY_RUN = ("apply", "--dry-run=server", "--validate=strict")
# cert-manager's kinds: their CRDs are cert-manager's, not installed here (see the certManager case)
CERT_MANAGER_KINDS = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}

Obj = dict[str, Any]


def documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dry_run(cluster: LocalCluster, text: str, namespace: str | None = None) -> list[str]:
    """Submit `text` to the apiserver without storing it; the lines kubectl prints, one per object.
    A refusal fails the test with kubectl's error (object names and reasons: nothing secret)."""
    args = [*(("-n", namespace) if namespace else ()), *DRY_RUN, "-f", "-"]
    result = kubectl(cluster, *args, input=text, check=False)
    assert result.returncode == 0, f"the apiserver refused it:\n{result.stderr.strip()}"
    # The one expected warning: objects another fixture created with server-side apply (the CRDs)
    # carry no last-applied annotation for client-side apply. Anything else (a deprecated API, a
    # field the server ignores, a PodSecurity hint) is worth a look: fail on it.
    warnings = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and "missing the kubectl.kubernetes.io/last-applied-configuration" not in line
    ]
    assert not warnings, "\n".join(warnings)
    return result.stdout.splitlines()


def assert_valid(cluster: LocalCluster, text: str, namespace: str | None = None) -> None:
    objects = documents(text)
    assert objects, "nothing to validate"
    lines = dry_run(cluster, text, namespace)
    # every object reached the apiserver (none skipped by kubectl), each once
    assert len(lines) == len(objects), lines
    assert all(line.endswith("(server dry run)") for line in lines), lines


def refusal(cluster: LocalCluster, obj: Obj, namespace: str, validate: str = "strict") -> str:
    args = ["-n", namespace, "apply", "--dry-run=server", f"--validate={validate}", "-f", "-"]
    result = kubectl(cluster, *args, input=yaml.safe_dump(obj), check=False)
    return result.stderr.strip() if result.returncode else ""


@pytest.fixture(scope="module")
def crds(control_plane: LocalCluster) -> None:
    """The CRDs for real (examples and RECs need them), Established."""
    ensure_crds(control_plane)


def create_namespace(cluster: LocalCluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubectl(cluster, "create", "namespace", name)
    return name


def delete_namespaces(cluster: LocalCluster, *names: str) -> None:
    for name in names:
        kubectl(cluster, "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def namespace(control_plane: LocalCluster, crds: None) -> Iterator[str]:
    name = create_namespace(control_plane, "dry")
    try:
        yield name
    finally:
        delete_namespaces(control_plane, name)


# --- deploy/ -------------------------------------------------------------------------------------


def test_bundle_and_the_admission_step_as_documented(control_plane: LocalCluster, namespace: str) -> None:
    """`kubectl apply -n <ns> -f deploy/bundle.yaml`, then the admission manifests for <ns>."""
    assert_valid(control_plane, (DEPLOY / "bundle.yaml").read_text(), namespace)
    assert_valid(control_plane, admission_manifests(DEPLOY, namespace))


# not deploy/monitoring/: the Prometheus Operator's kinds (no CRDs for them here) and a rule file
DEPLOY_FILES = sorted(str(path.relative_to(DEPLOY)) for path in DEPLOY.rglob("*.yaml")
                      if path.parent.name != "monitoring")


@pytest.mark.parametrize("name", DEPLOY_FILES)
def test_every_deploy_file_on_its_own(control_plane: LocalCluster, namespace: str, name: str) -> None:
    # deploy/admission/ names the operator's namespace by a placeholder, filled in as documented
    text = (DEPLOY / name).read_text().replace(NAMESPACE_PLACEHOLDER, namespace)
    assert_valid(control_plane, text, namespace)


# --- examples/ -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("*.yaml")))
def test_every_example(control_plane: LocalCluster, namespace: str, name: str) -> None:
    # No admission webhook selects this namespace: the CRDs' schemas are what is checked here.
    assert_valid(control_plane, (EXAMPLES / name).read_text(), namespace)


# --- the Helm chart ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> str:
    return str(ensure_helm(Console(stderr=True)))


def helm_template(helm: str, tmp: Path, namespace: str, values: Obj | None = None) -> str:
    """`helm template` of the chart into `namespace` (CRDs included), with its own homes and no
    kubeconfig: rendering only, nothing asks the cluster."""
    argv = [helm, "template", RELEASE, str(CHART), "--namespace", namespace, "--include-crds"]
    if values is not None:
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        argv += ["--values", str(path)]
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(tmp / "config"),
        "HELM_CACHE_HOME": str(tmp / "cache"),
        "HELM_DATA_HOME": str(tmp / "data"),
        "KUBECONFIG": str(tmp / "no-kubeconfig"),
    }
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def kinds(objects: list[Obj]) -> set[str]:
    return {obj["kind"] for obj in objects}


def test_chart_defaults(control_plane: LocalCluster, namespace: str, helm: str, tmp_path: Path) -> None:
    text = helm_template(helm, tmp_path, namespace)
    assert {"Deployment", "ValidatingWebhookConfiguration", "ClusterRole"} <= kinds(documents(text))
    assert_valid(control_plane, text)


def test_chart_watching_two_more_namespaces(
    control_plane: LocalCluster, namespace: str, helm: str, tmp_path: Path
) -> None:
    # the chart's Roles and RoleBindings go into the watched namespaces, which must exist
    watched = [create_namespace(control_plane, "dry-watch"), create_namespace(control_plane, "dry-watch")]
    try:
        text = helm_template(helm, tmp_path, namespace, {"watchNamespaces": watched})
        role_namespaces = {obj["metadata"]["namespace"] for obj in documents(text) if obj["kind"] == "Role"}
        assert role_namespaces == {namespace, *watched}
        assert_valid(control_plane, text)
    finally:
        delete_namespaces(control_plane, *watched)


def test_chart_without_the_webhook(
    control_plane: LocalCluster, namespace: str, helm: str, tmp_path: Path
) -> None:
    text = helm_template(helm, tmp_path, namespace, {"webhook": {"enabled": False}})
    assert "ValidatingWebhookConfiguration" not in kinds(documents(text))
    assert_valid(control_plane, text)


def test_chart_with_a_certificate_secret(
    control_plane: LocalCluster, namespace: str, helm: str, tmp_path: Path
) -> None:
    # a real CA certificate (public; its key is dropped at once) as the caBundle
    ca_pem = issue_server_certificate("admission", [f"admission.{namespace}.svc"]).ca_certificate_pem
    ca_bundle = base64.b64encode(ca_pem.encode()).decode()
    values = {
        "webhook": {"certificate": {"mode": "secret", "secretName": "webhook-tls", "caBundle": ca_bundle}}
    }
    text = helm_template(helm, tmp_path, namespace, values)
    (webhook,) = [obj for obj in documents(text) if obj["kind"] == "ValidatingWebhookConfiguration"]
    assert {hook["clientConfig"]["caBundle"] for hook in webhook["webhooks"]} == {ca_bundle}
    assert_valid(control_plane, text)


def test_chart_with_cert_manager(
    control_plane: LocalCluster, namespace: str, helm: str, tmp_path: Path
) -> None:
    objects = documents(
        helm_template(helm, tmp_path, namespace, {"webhook": {"certificate": {"mode": "certManager"}}})
    )
    # cert-manager's Issuer and Certificate need cert-manager's CRDs, which this cluster does not
    # have (cert-manager is installed separately, not by us): the apiserver cannot know those kinds.
    # Every other object of this rendering is validated; exactly the cert-manager kinds are left out.
    left_out = [obj for obj in objects if (obj["apiVersion"], obj["kind"]) in CERT_MANAGER_KINDS]
    rest = [obj for obj in objects if (obj["apiVersion"], obj["kind"]) not in CERT_MANAGER_KINDS]
    assert sorted((obj["apiVersion"], obj["kind"]) for obj in left_out) == sorted(CERT_MANAGER_KINDS)
    assert {"Deployment", "ValidatingWebhookConfiguration", "Service"} <= kinds(rest)
    assert_valid(control_plane, yaml.safe_dump_all(rest, explicit_start=True))


# --- the negative control ------------------------------------------------------------------------


def operator_deployment() -> Obj:
    (deployment,) = [
        obj for obj in documents((DEPLOY / "operator.yaml").read_text()) if obj["kind"] == "Deployment"
    ]
    return deployment


def test_validation_refuses_a_misspelled_field_and_an_invalid_value(
    control_plane: LocalCluster, namespace: str
) -> None:
    assert refusal(control_plane, operator_deployment(), namespace) == "", "the copy must pass unchanged"

    misspelled = operator_deployment()
    pod = misspelled["spec"]["template"]["spec"]
    pod["securityContxt"] = pod.pop("securityContext")
    error = refusal(control_plane, misspelled, namespace)
    assert 'unknown field "spec.template.spec.securityContxt"' in error, error
    # the same object without strict validation goes through (the field silently dropped): it is
    # --validate=strict that bites
    assert refusal(control_plane, misspelled, namespace, validate="ignore") == ""

    invalid = operator_deployment()
    invalid["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    error = refusal(control_plane, invalid, namespace)
    assert "spec.template.spec.containers[0].ports[0].containerPort" in error, error
    assert "Invalid value: 70000" in error, error


def test_validation_refuses_a_misspelled_field_of_a_rec(control_plane: LocalCluster, namespace: str) -> None:
    """The examples are checked against the CRDs' schemas, strictly too: a REC field misspelled is
    an error, not pruned away."""
    rec: Obj = {
        "apiVersion": "app.redislabs.com/v1",
        "kind": "RedisEnterpriseCluster",
        "metadata": {"name": "rec"},
        "spec": {"nodes": 3, "persistentSpec": {"enabled": True, "volumeSise": "2Gi"}},
    }
    error = refusal(control_plane, rec, namespace)
    assert 'unknown field "spec.persistentSpec.volumeSise"' in error, error
    rec["spec"]["persistentSpec"]["volumeSize"] = rec["spec"]["persistentSpec"].pop("volumeSise")
    assert refusal(control_plane, rec, namespace) == ""
