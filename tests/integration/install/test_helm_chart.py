"""The Helm chart (charts/recluster), rendered by the pinned Helm built from tools/helm: it lints, bad
values fail with the value named, each certificate mode and the watched namespaces render what they
should, and with default values it installs exactly what the plain manifests in deploy/ install, so
the two cannot drift apart. `helm template` only: nothing here talks to a cluster."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from recluster.api import check_rec
from recluster.local.helm import ensure_helm, helm_version
from recluster.operator.specs import build_rec_children
from recluster.operator.startup import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "recluster"
DEPLOY = REPO / "deploy"
NAMESPACE = "ops"
RELEASE = "rel"
CERT_DIR = "/etc/recluster/webhook"

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def helm() -> list[str]:
    """The pinned helm (built once, then cached); each call gets its own homes and no kubeconfig."""
    return [str(ensure_helm(Console(stderr=True)))]


def helm_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HELM_CONFIG_HOME": str(tmp / "config"),
        "HELM_CACHE_HOME": str(tmp / "cache"),
        "HELM_DATA_HOME": str(tmp / "data"),
        "KUBECONFIG": str(tmp / "no-kubeconfig"),
    }


def run_helm(
    helm: list[str], tmp: Path, *args: str, values: Obj | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [*helm, *args]
    if values is not None:
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        argv += ["--values", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=helm_env(tmp), check=False)


def render(helm: list[str], tmp: Path, values: Obj | None = None, *extra: str) -> list[Obj]:
    result = run_helm(
        helm, tmp, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra, values=values
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_error(helm: list[str], tmp: Path, *args: str, values: Obj | None = None) -> str:
    result = run_helm(
        helm, tmp, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args, values=values
    )
    assert result.returncode != 0, f"rendered although it should not:\n{result.stdout[:2000]}"
    return result.stderr


def load(*paths: Path) -> list[Obj]:
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


# deploy/ files concatenated from the others (`recluster bundle`), not parts of their own
GENERATED = {"bundle.yaml"}


def deploy_objects() -> list[Obj]:
    """Every object of the plain manifests, each once."""
    return load(
        *sorted(path for path in DEPLOY.glob("*.yaml") if path.name not in GENERATED),
        *sorted((DEPLOY / "admission").glob("*.yaml")),
        *sorted((DEPLOY / "crds").glob("*.yaml")),
    )


def kinds_names(objects: list[Obj]) -> set[tuple[str, str]]:
    return {(obj["kind"], obj["metadata"]["name"]) for obj in objects}


def find(objects: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> list[Obj]:
    return [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (name is None or obj["metadata"]["name"] == name)
        and (namespace is None or obj["metadata"].get("namespace") == namespace)
    ]


def one(objects: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> Obj:
    found = find(objects, kind, name, namespace)
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {kinds_names(objects)}"
    return found[0]


def operator_container(objects: list[Obj]) -> Obj:
    deployment = one(objects, "Deployment", "redis-enterprise-operator")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Obj = containers[0]
    return container


def env_of(objects: list[Obj]) -> dict[str, Any]:
    return {
        entry["name"]: entry.get("value", entry.get("valueFrom"))
        for entry in operator_container(objects)["env"]
    }


def without_ca_bundle(webhooks: list[Obj]) -> list[Obj]:
    hooks = copy.deepcopy(webhooks)
    for hook in hooks:
        hook["clientConfig"].pop("caBundle", None)
    return hooks


def in_namespace(obj: Obj, namespace: str) -> Obj:
    """A deploy/ object as `kubectl apply -n <namespace>` after replacing OPERATOR_NAMESPACE."""
    text = yaml.safe_dump(obj).replace("OPERATOR_NAMESPACE", namespace)
    loaded: Obj = yaml.safe_load(text)
    return loaded


@pytest.fixture(scope="module")
def defaults(helm: list[str], tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    return render(helm, tmp_path_factory.mktemp("defaults"), None, "--include-crds")


# --- helm itself, lint and schema ------------------------------------------------------------------


def test_helm_is_the_pinned_release(helm: list[str], tmp_path: Path) -> None:
    result = run_helm(helm, tmp_path, "version", "--short")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == helm_version() == "v3.22.0"


@pytest.mark.parametrize(
    "values",
    [
        None,
        {"webhook": {"certificate": {"mode": "secret", "secretName": "tls", "caBundle": "QUJD"}}},
        {"webhook": {"certificate": {"mode": "certManager"}}},
        {"webhook": {"enabled": False}},
        {"watchNamespaces": ["a", "b"], "operatorEnvironment": {"OPERATOR_LOG_FORMAT": "json"}},
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}}},
        {"metrics": {"podMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                     "grafanaDashboard": {"enabled": True, "namespace": "grafana"}}},
    ],
    ids=["defaults", "secret", "certManager", "no-webhook", "namespaces", "serviceMonitor", "monitoring"],
)
def test_lint_strict_passes(helm: list[str], tmp_path: Path, values: Obj | None) -> None:
    result = run_helm(helm, tmp_path, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, values=values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "path", "why"),
    [
        ("webhook.certificate.mode=bogus", "/webhook/certificate/mode", "must be one of"),
        ("watchNamespaces=notalist", "/watchNamespaces", "want array"),
        ("watchNamespaces={Not_A_Namespace}", "/watchNamespaces/0", "does not match pattern"),
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy", "must be one of"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy", "must be one of"),
        ("webhook.enabled=maybe", "/webhook/enabled", "want boolean"),
        ("webhok.enabled=false", "additional properties 'webhok' not allowed", ""),
        ("metrics.serviceMonitor.enabled=yes", "/metrics/serviceMonitor/enabled", "want boolean"),
        ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval", "does not match"),
        ("metrics.podMonitor.enabled=yes", "/metrics/podMonitor/enabled", "want boolean"),
        ("metrics.prometheusRule.enabled=yes", "/metrics/prometheusRule/enabled", "want boolean"),
        ("metrics.grafanaDashboard.namespace=Not_A_Namespace", "/metrics/grafanaDashboard/namespace", ""),
    ],
)
def test_bad_values_fail_naming_the_value(
    helm: list[str], tmp_path: Path, setting: str, path: str, why: str
) -> None:
    message = render_error(helm, tmp_path, "--set", setting)
    assert path in message and why in message, message


def test_lint_fails_on_a_bad_value(helm: list[str], tmp_path: Path) -> None:
    result = run_helm(
        helm, tmp_path, "lint", "--strict", str(CHART), "--set", "webhook.certificate.mode=bogus"
    )
    assert result.returncode != 0
    assert "/webhook/certificate/mode" in result.stdout + result.stderr


# --- the chart against deploy/ ------------------------------------------------------------------


def test_crds_are_copies_of_deploy_crds() -> None:
    chart = {path.name: path.read_bytes() for path in (CHART / "crds").iterdir()}
    deploy = {path.name: path.read_bytes() for path in (DEPLOY / "crds").glob("*.yaml")}
    assert sorted(chart) == sorted(deploy), "charts/recluster/crds/ and deploy/crds/ hold different files"
    stale = [name for name in deploy if chart[name] != deploy[name]]
    assert not stale, f"charts/recluster/crds/ differs from deploy/crds/ in {stale}: copy them over"


def test_defaults_install_the_objects_of_deploy(defaults: list[Obj]) -> None:
    plain = deploy_objects()
    assert len(plain) == len(kinds_names(plain)), "an object twice in deploy/: a generated file?"
    assert kinds_names(defaults) == kinds_names(plain)
    assert len(defaults) == len(kinds_names(defaults))
    for obj in defaults:
        cluster_scoped = obj["kind"] in (
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingWebhookConfiguration",
        )
        assert obj["metadata"].get("namespace") == (None if cluster_scoped else NAMESPACE), obj["metadata"]


def test_every_object_keeps_the_labels_of_deploy_and_has_the_standard_ones(defaults: list[Obj]) -> None:
    rendered = {(obj["kind"], obj["metadata"]["name"]): obj for obj in defaults}
    for plain in deploy_objects():
        labels = rendered[(plain["kind"], plain["metadata"]["name"])]["metadata"].get("labels") or {}
        assert plain["metadata"].get("labels", {}).items() <= labels.items(), plain["metadata"]["name"]
        if plain["kind"] != "CustomResourceDefinition":
            assert {
                "app.kubernetes.io/name": "recluster",
                "app.kubernetes.io/instance": RELEASE,
                "app.kubernetes.io/version": "0.1.0",
                "app.kubernetes.io/managed-by": "Helm",
                "helm.sh/chart": "recluster-0.1.0",
            }.items() <= labels.items()


def test_operator_deployment_matches_deploy(defaults: list[Obj]) -> None:
    (plain,) = find(load(DEPLOY / "operator.yaml"), "Deployment")
    chart = one(defaults, "Deployment", "redis-enterprise-operator")
    plain_container = operator_container([plain])
    chart_container = operator_container(defaults)
    assert chart_container["image"].rsplit(":", 1)[0] == plain_container["image"].rsplit(":", 1)[0]
    assert chart_container["image"] == "docker.io/library/recluster:0.1.0"
    assert {**chart_container, "image": None} == {**plain_container, "image": None}
    # the rest of the Deployment: selector, strategy, pod labels and spec
    for field in ("replicas", "strategy", "selector"):
        assert chart["spec"][field] == plain["spec"][field], field
    pod, plain_pod = chart["spec"]["template"], plain["spec"]["template"]
    assert plain_pod["metadata"]["labels"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"] == plain_pod["spec"] | {"containers": pod["spec"]["containers"]}
    assert "annotations" not in pod["metadata"]


def test_rbac_service_and_webhook_match_deploy(defaults: list[Obj]) -> None:
    plain = [in_namespace(obj, NAMESPACE) for obj in deploy_objects()]
    assert one(defaults, "Role")["rules"] == one(plain, "Role")["rules"]
    assert one(defaults, "ClusterRole")["rules"] == one(plain, "ClusterRole")["rules"]
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        chart_binding, plain_binding = one(defaults, kind), one(plain, kind)
        assert chart_binding["roleRef"] == plain_binding["roleRef"]
        assert chart_binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "redis-enterprise-operator", "namespace": NAMESPACE}
        ]
        assert [{**s, "namespace": NAMESPACE} for s in plain_binding["subjects"]] == chart_binding["subjects"]
    for service in ("admission", "redis-enterprise-operator-metrics"):
        assert one(defaults, "Service", service)["spec"] == one(plain, "Service", service)["spec"], service
    chart_hooks = one(defaults, "ValidatingWebhookConfiguration")["webhooks"]
    assert without_ca_bundle(chart_hooks) == without_ca_bundle(
        one(plain, "ValidatingWebhookConfiguration")["webhooks"]
    )
    # the operator keeps the caBundle current: an upgrade must not blank it
    assert all("caBundle" not in hook["clientConfig"] for hook in chart_hooks)


# --- namespaces --------------------------------------------------------------------------------


def test_watch_namespaces_get_roles_and_the_operator_watches_exactly_them(
    helm: list[str], tmp_path: Path
) -> None:
    objects = render(helm, tmp_path, {"watchNamespaces": ["a", "b"]})
    for kind in ("Role", "RoleBinding"):
        assert {obj["metadata"]["namespace"] for obj in find(objects, kind)} == {NAMESPACE, "a", "b"}
    for binding in find(objects, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "redis-enterprise-operator", "namespace": NAMESPACE}
        ]
        assert binding["roleRef"]["name"] == "redis-enterprise-operator"
    rules = {yaml.safe_dump(obj["rules"]) for obj in find(objects, "Role")}
    assert len(rules) == 1
    assert env_of(objects)["WATCH_NAMESPACE"] == "a,b"
    for hook in one(objects, "ValidatingWebhookConfiguration")["webhooks"]:
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["a", "b"]
        assert hook["clientConfig"]["service"]["namespace"] == NAMESPACE


def test_the_release_namespace_in_the_list_gets_one_role(helm: list[str], tmp_path: Path) -> None:
    objects = render(helm, tmp_path, {"watchNamespaces": ["a", NAMESPACE]})
    assert sorted(obj["metadata"]["namespace"] for obj in find(objects, "Role")) == sorted([NAMESPACE, "a"])
    assert sorted(obj["metadata"]["namespace"] for obj in find(objects, "RoleBinding")) == sorted(
        [NAMESPACE, "a"]
    )
    assert env_of(objects)["WATCH_NAMESPACE"] == f"a,{NAMESPACE}"


def test_default_watches_the_release_namespace(defaults: list[Obj]) -> None:
    assert env_of(defaults)["WATCH_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for hook in one(defaults, "ValidatingWebhookConfiguration")["webhooks"]:
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [NAMESPACE]


# --- certificate modes ---------------------------------------------------------------------------


def certificate_volume(objects: list[Obj]) -> Obj | None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volumes = [v for v in pod["volumes"] if v["name"] == "webhook-certificate"]
    mounts = [m for m in operator_container(objects)["volumeMounts"] if m["name"] == "webhook-certificate"]
    if not volumes:
        assert not mounts
        return None
    assert mounts == [{"name": "webhook-certificate", "mountPath": CERT_DIR, "readOnly": True}]
    volume: Obj = volumes[0]
    return volume


def test_operator_mode_lets_the_operator_patch_its_own_configuration(helm: list[str], tmp_path: Path) -> None:
    objects = render(helm, tmp_path, {"webhook": {"name": "team-a-admission", "failurePolicy": "Ignore"}})
    env = env_of(objects)
    assert env["OPERATOR_WEBHOOK_CONFIGURATION"] == "team-a-admission"
    assert env["OPERATOR_WEBHOOK_PORT"] == "8443"
    assert "OPERATOR_WEBHOOK_CERT_DIR" not in env
    assert certificate_volume(objects) is None
    webhook = one(objects, "ValidatingWebhookConfiguration", "team-a-admission")
    assert {hook["failurePolicy"] for hook in webhook["webhooks"]} == {"Ignore"}
    role = one(objects, "ClusterRole")
    assert role["rules"][0]["resourceNames"] == ["team-a-admission"]
    assert role["metadata"]["name"] == "redis-enterprise-operator-team-a-admission"
    assert one(objects, "ClusterRoleBinding")["roleRef"]["name"] == role["metadata"]["name"]


def test_secret_mode_mounts_the_secret_and_sets_the_ca_bundle(helm: list[str], tmp_path: Path) -> None:
    values = {"webhook": {"certificate": {"mode": "secret", "secretName": "my-tls", "caBundle": "Q0EK"}}}
    objects = render(helm, tmp_path, values)
    env = env_of(objects)
    assert env["OPERATOR_WEBHOOK_CERT_DIR"] == CERT_DIR
    assert "OPERATOR_WEBHOOK_CONFIGURATION" not in env
    volume = certificate_volume(objects)
    assert volume is not None and volume["secret"]["secretName"] == "my-tls"
    assert {item["key"] for item in volume["secret"]["items"]} == {"tls.crt", "tls.key", "ca.crt"}
    hooks = one(objects, "ValidatingWebhookConfiguration")["webhooks"]
    assert [hook["clientConfig"]["caBundle"] for hook in hooks] == ["Q0EK", "Q0EK"]
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")
    assert not find(objects, "Certificate") and not find(objects, "Issuer")


def test_secret_mode_requires_the_ca_bundle_and_the_secret(helm: list[str], tmp_path: Path) -> None:
    message = render_error(
        helm, tmp_path, values={"webhook": {"certificate": {"mode": "secret", "secretName": "my-tls"}}}
    )
    assert "webhook.certificate.caBundle is required when webhook.certificate.mode is secret" in message
    message = render_error(
        helm, tmp_path, values={"webhook": {"certificate": {"mode": "secret", "caBundle": "QQ=="}}}
    )
    assert "webhook.certificate.secretName is required when webhook.certificate.mode is secret" in message


def test_cert_manager_mode_issues_the_certificate_and_injects_the_ca(helm: list[str], tmp_path: Path) -> None:
    objects = render(helm, tmp_path, {"webhook": {"certificate": {"mode": "certManager"}}})
    issuer = one(objects, "Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert issuer["metadata"]["namespace"] == NAMESPACE
    certificate = one(objects, "Certificate")
    assert certificate["metadata"]["namespace"] == NAMESPACE
    assert certificate["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert f"admission.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    volume = certificate_volume(objects)
    assert volume is not None and volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    webhook = one(objects, "ValidatingWebhookConfiguration")
    assert webhook["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{certificate['metadata']['name']}"
    }
    assert all("caBundle" not in hook["clientConfig"] for hook in webhook["webhooks"])
    env = env_of(objects)
    assert "OPERATOR_WEBHOOK_CONFIGURATION" not in env
    assert env["OPERATOR_WEBHOOK_CERT_DIR"] == CERT_DIR
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")


def test_cert_manager_mode_takes_a_secret_name(helm: list[str], tmp_path: Path) -> None:
    values = {"webhook": {"certificate": {"mode": "certManager", "secretName": "webhook-tls"}}}
    objects = render(helm, tmp_path, values)
    assert one(objects, "Certificate")["spec"]["secretName"] == "webhook-tls"
    volume = certificate_volume(objects)
    assert volume is not None and volume["secret"]["secretName"] == "webhook-tls"


def test_no_webhook_objects_when_disabled(helm: list[str], tmp_path: Path) -> None:
    for mode in ("operator", "secret", "certManager"):
        values = {"webhook": {"enabled": False, "certificate": {"mode": mode}}}
        objects = render(helm, tmp_path, values)
        kinds = {obj["kind"] for obj in objects}
        assert kinds == {"ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"}
        assert one(objects, "Service")["metadata"]["name"] == "redis-enterprise-operator-metrics"
        assert not [name for name in env_of(objects) if name.startswith("OPERATOR_WEBHOOK")]
        assert [port["name"] for port in operator_container(objects)["ports"]] == ["http"]
        assert certificate_volume(objects) is None


# --- the other values ----------------------------------------------------------------------------


def test_pod_values_reach_the_deployment(helm: list[str], tmp_path: Path) -> None:
    values: Obj = {
        "image": {"repository": "registry.example/recluster", "tag": "9.9.9", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "pull"}],
        # maps merge with the defaults (Helm): every key given, or null to drop one
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": None, "memory": "256Mi"},
        },
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        "podAnnotations": {"example.com/team": "data"},
    }
    objects = render(helm, tmp_path, values)
    pod = one(objects, "Deployment")["spec"]["template"]
    container = operator_container(objects)
    assert container["image"] == "registry.example/recluster:9.9.9"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert pod["spec"]["imagePullSecrets"] == [{"name": "pull"}]
    for field in ("nodeSelector", "tolerations", "affinity"):
        assert pod["spec"][field] == values[field], field
    assert pod["metadata"]["annotations"] == {"example.com/team": "data"}
    assert not find(objects, "ConfigMap")


def test_operator_environment_makes_the_config_map(helm: list[str], tmp_path: Path) -> None:
    environment = {
        "OPERATOR_LOG_FORMAT": "json",
        "OPERATOR_RESYNC_SECONDS": 60,
        "OPERATOR_LEADER_ELECTION": True,
    }
    objects = render(helm, tmp_path, {"operatorEnvironment": environment})
    config = one(objects, "ConfigMap", "operator-environment-config")
    assert config["metadata"]["namespace"] == NAMESPACE
    assert config["data"] == {
        "OPERATOR_LOG_FORMAT": "json",
        "OPERATOR_RESYNC_SECONDS": "60",
        "OPERATOR_LEADER_ELECTION": "true",
    }
    assert operator_container(objects)["envFrom"] == [
        {"configMapRef": {"name": "operator-environment-config", "optional": True}}
    ]
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    changed = render(helm, tmp_path, {"operatorEnvironment": {**environment, "OPERATOR_LOG_FORMAT": "plain"}})
    changed_annotations = one(changed, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["checksum/operator-environment"] != changed_annotations["checksum/operator-environment"]
    )


# --- the image of the pods the operator creates; the metrics Service and its ServiceMonitor -------


def test_image_values_reach_every_pod_the_operator_creates(helm: list[str], tmp_path: Path) -> None:
    """The chart's image is the operator's default (OPERATOR_DEFAULT_IMAGE and its pull policy): the
    node StatefulSet, the services rigger and the service broker the operator builds from it run it."""
    values = {"image": {"repository": "registry.example/recluster", "tag": "9.9.9", "pullPolicy": "Always"}}
    objects = render(helm, tmp_path, values)
    env = env_of(objects)
    image = "registry.example/recluster:9.9.9"
    assert env["OPERATOR_DEFAULT_IMAGE"] == operator_container(objects)["image"] == image
    assert env["OPERATOR_DEFAULT_IMAGE_PULL_POLICY"] == "Always"
    settings = Settings.from_environment({k: v for k, v in env.items() if isinstance(v, str)})
    rec = check_rec({"apiVersion": "app.redislabs.com/v1", "kind": "RedisEnterpriseCluster",
                     "metadata": {"name": "rec", "namespace": NAMESPACE, "uid": "u", "generation": 1},
                     "spec": {"nodes": 3, "serviceBrokerSpec": {"enabled": True}}})
    children = build_rec_children(rec, image=settings.image, pull_policy=settings.image_pull_policy,
                                  password_secret_exists=True, tls_secret_exists=True)
    pods = {(obj["kind"], obj["metadata"]["name"]): obj["spec"]["template"]["spec"]["containers"][0]
            for obj in children if obj["kind"] in ("StatefulSet", "Deployment")}
    assert set(pods) == {("StatefulSet", "rec"), ("Deployment", "rec-services-rigger"),
                         ("Deployment", "rec-service-broker")}
    for container in pods.values():
        assert (container["image"], container["imagePullPolicy"]) == (image, "Always")
    default_tag = render(helm, tmp_path, {"image": {"repository": "mirror.example/recluster"}})
    assert env_of(default_tag)["OPERATOR_DEFAULT_IMAGE"] == "mirror.example/recluster:0.1.0"


def test_metrics_service_selects_the_operator_and_no_service_monitor_by_default(defaults: list[Obj]) -> None:
    service = one(defaults, "Service", "redis-enterprise-operator-metrics")
    pod = one(defaults, "Deployment")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    (target,) = [p for p in operator_container(defaults)["ports"] if p["name"] == port["targetPort"]]
    assert (port["name"], target["containerPort"]) == ("metrics", 8080)
    assert not find(defaults, "ServiceMonitor")


def test_service_monitor_on_a_value(helm: list[str], tmp_path: Path) -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"},
                                             "interval": "15s", "scrapeTimeout": "5s"}}}
    objects = render(helm, tmp_path, values)
    monitor = one(objects, "ServiceMonitor", "redis-enterprise-operator", NAMESPACE)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["labels"]["app"] == "redis-enterprise"
    service = one(objects, "Service", "redis-enterprise-operator-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # it selects the metrics Service only (not the admission Service, which carries the same app label)
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= one(objects, "Service", "admission")[
        "metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    plain = render(helm, tmp_path, {"metrics": {"serviceMonitor": {"enabled": True}}})
    assert one(plain, "ServiceMonitor")["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "30s"}
    ]


# --- the monitoring pack: node pods' PodMonitor, PrometheusRule, Grafana dashboard ----------------


def _node_pod(namespace: str) -> Obj:
    rec = check_rec({"apiVersion": "app.redislabs.com/v1", "kind": "RedisEnterpriseCluster",
                     "metadata": {"name": "rec", "namespace": namespace, "uid": "u", "generation": 1},
                     "spec": {"nodes": 3}})
    children = build_rec_children(rec, image="img", password_secret_exists=True, tls_secret_exists=True)
    (statefulset,) = [obj for obj in children if obj["kind"] == "StatefulSet"]
    template: Obj = statefulset["spec"]["template"]
    return template


def test_monitoring_objects_only_on_values(defaults: list[Obj]) -> None:
    for kind in ("PodMonitor", "PrometheusRule", "ConfigMap"):
        assert not find(defaults, kind), kind


def test_pod_monitor_scrapes_the_node_pods_of_the_watched_namespaces(helm: list[str], tmp_path: Path) -> None:
    values = {"watchNamespaces": ["a", "b"],
              "metrics": {"podMonitor": {"enabled": True, "labels": {"release": "prometheus"},
                                         "interval": "15s", "scrapeTimeout": "5s"}}}
    monitor = one(render(helm, tmp_path, values), "PodMonitor", "redis-enterprise-nodes", NAMESPACE)
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE, "a", "b"]}
    pod = _node_pod("a")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    node_ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert node_ports[endpoint["port"]] == 8070
    assert endpoint == {"port": "metrics", "path": "/metrics", "scheme": "https", "interval": "15s",
                        "scrapeTimeout": "5s", "tlsConfig": {"insecureSkipVerify": True}}
    # the plain manifest for bundle users selects the same pods the same way
    (plain,) = load(DEPLOY / "monitoring" / "podmonitor.yaml")
    assert plain["spec"]["selector"] == monitor["spec"]["selector"]
    (plain_endpoint,) = plain["spec"]["podMetricsEndpoints"]
    assert plain_endpoint == {k: v for k, v in endpoint.items() if k != "scrapeTimeout"} | {"interval": "30s"}
    # Helm merges a given tlsConfig with the default: verifying needs insecureSkipVerify false too
    verified = {"ca": {"secret": {"name": "rec-tls", "key": "ca.crt"}}, "insecureSkipVerify": False,
                "serverName": "rec.a.svc.cluster.local"}
    values["metrics"]["podMonitor"]["tlsConfig"] = verified
    monitor = one(render(helm, tmp_path, values), "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["tlsConfig"] == verified


def test_prometheus_rule_holds_the_rules_of_deploy(helm: list[str], tmp_path: Path) -> None:
    values = {"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}}}}
    rule = one(render(helm, tmp_path, values), "PrometheusRule", "recluster", NAMESPACE)
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["spec"] == yaml.safe_load((DEPLOY / "monitoring" / "prometheus-rules.yaml").read_text())
    (plain,) = load(DEPLOY / "monitoring" / "prometheusrule.yaml")
    assert plain["spec"] == rule["spec"]


def test_grafana_dashboard_config_map(helm: list[str], tmp_path: Path) -> None:
    values = {"metrics": {"grafanaDashboard": {"enabled": True}}}
    config_map = one(render(helm, tmp_path, values), "ConfigMap", "recluster-grafana-dashboard", NAMESPACE)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    assert json.loads(text) == json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
    values["metrics"]["grafanaDashboard"]["namespace"] = "grafana"
    assert one(render(helm, tmp_path, values), "ConfigMap")["metadata"]["namespace"] == "grafana"
