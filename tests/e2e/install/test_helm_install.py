"""The Helm chart installed the way `helm install` would install it: `helm template` into a namespace
of its own (CRDs included, the local project image, a webhook configuration of this test's own so
no other test's is touched), applied with server-side apply. The operator pod becomes Ready, takes
its Lease, publishes its CA into the webhook configuration, and the webhook refuses an invalid REC.
No REC is brought up here (other tests do)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from tests.e2e.local.support import IMAGE

from recluster.local.cluster import LocalCluster
from recluster.local.harness import eventually, kubectl, ready_pods, rec_manifest, strip_finalizers
from recluster.local.helm import ensure_helm
from recluster.local.paths import repo_dir

pytestmark = pytest.mark.e2e

CHART = Path(repo_dir()) / "charts" / "recluster"
OPERATOR = "redis-enterprise-operator"
# what the chart makes outside its namespace, besides the CRDs (shared: never deleted here)
CLUSTER_SCOPED = ("ValidatingWebhookConfiguration", "ClusterRoleBinding", "ClusterRole")

Obj = dict[str, Any]


def helm_template(tmp: Path, namespace: str, *args: str) -> str:
    helm = str(ensure_helm(Console(stderr=True)))
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(tmp / "config"),
        "HELM_CACHE_HOME": str(tmp / "cache"),
        "HELM_DATA_HOME": str(tmp / "data"),
        "KUBECONFIG": str(tmp / "no-kubeconfig"),
    }
    argv = [helm, "template", "recluster", str(CHART), "--namespace", namespace, "--include-crds", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def webhook_ca_bundles(cluster: LocalCluster, name: str) -> list[str]:
    config = json.loads(kubectl(cluster, "get", "validatingwebhookconfiguration", name, "-o", "json").stdout)
    return [hook["clientConfig"].get("caBundle", "") for hook in config["webhooks"]]


def create_rec(cluster: LocalCluster, namespace: str, rec: Obj, *flags: str) -> str:
    """kubectl's error when the REC is refused, '' when accepted."""
    result = kubectl(
        cluster, "-n", namespace, "create", *flags, "-f", "-", input=json.dumps(rec), check=False
    )
    return result.stderr.strip() if result.returncode else ""


def test_chart_installs_an_operator_whose_webhook_works(local_cluster: LocalCluster, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    namespace = f"helm-{suffix}"
    webhook = f"recluster-helm-{suffix}"
    repository, tag = IMAGE.rsplit(":", 1)
    text = helm_template(
        tmp_path,
        namespace,
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        f"webhook.name={webhook}",
    )
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    cluster_scoped = [
        (obj["kind"], obj["metadata"]["name"]) for obj in objects if obj["kind"] in CLUSTER_SCOPED
    ]
    assert sorted(kind for kind, _ in cluster_scoped) == sorted(CLUSTER_SCOPED)
    # named after this test's webhook, so the cleanup below can only delete this test's objects
    assert all(suffix in name for _, name in cluster_scoped), cluster_scoped

    kubectl(local_cluster, "create", "namespace", namespace)
    try:
        result = kubectl(
            local_cluster, "apply", "--server-side", "--force-conflicts", "-f", "-", input=text, check=False
        )
        assert result.returncode == 0, result.stderr
        assert not result.stderr.strip(), f"warnings while applying the chart:\n{result.stderr}"
        assert len(result.stdout.splitlines()) == len(objects), result.stdout

        pods = eventually(
            "the operator pod Ready",
            lambda: ready_pods(local_cluster, namespace, f"name={OPERATOR}"),
            timeout=180,
            interval=2,
        )
        pod = pods[0]["metadata"]["name"]
        assert pods[0]["spec"]["containers"][0]["image"] == IMAGE
        eventually(
            "the operator holds the Lease",
            lambda: (
                kubectl(
                    local_cluster,
                    "-n",
                    namespace,
                    "get",
                    "lease",
                    OPERATOR,
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                    check=False,
                ).stdout
                == pod
            ),
            timeout=60,
        )

        def published() -> list[str] | None:
            found = webhook_ca_bundles(local_cluster, webhook)
            return found if found and all(found) else None

        bundles = eventually(
            "the operator's CA in the webhook configuration", published, timeout=90, interval=2
        )
        assert len(set(bundles)) == 1
        assert base64.b64decode(bundles[0]).startswith(b"-----BEGIN CERTIFICATE-----")

        # The apiserver takes a moment to pick the new configuration (and its caBundle) up; until
        # then a call fails with a TLS error, refused too (failurePolicy Fail) but not naming the
        # field. A server-side dry run goes through the webhook (sideEffects None) and stores
        # nothing, so retrying cannot leave an invalid REC behind.
        invalid = rec_manifest(nodes=2)

        def refused() -> str | None:
            error = create_rec(local_cluster, namespace, invalid, "--dry-run=server")
            return error if "spec.nodes" in error else None

        error = eventually("the webhook refusing nodes: 2", refused, timeout=60, interval=2)
        assert 'admission webhook "rec.admission.recluster.redis.io" denied the request' in error, error
        # for real now: refused, and nothing stored
        error = create_rec(local_cluster, namespace, invalid)
        assert "denied the request" in error and "spec.nodes" in error, error
        assert kubectl(local_cluster, "-n", namespace, "get", "rec", "rec", check=False).returncode != 0
        # a valid REC passes the same webhook (dry run: none is brought up here)
        assert create_rec(local_cluster, namespace, rec_manifest(), "--dry-run=server") == ""

        logs = kubectl(local_cluster, "-n", namespace, "logs", pod, check=False).stdout
        assert "Forbidden" not in logs, "the chart's RBAC falls short"
    finally:
        strip_finalizers(local_cluster, namespace)
        # the webhook configuration first, so nothing calls a Service that is going away
        for kind, name in sorted(cluster_scoped, key=lambda item: CLUSTER_SCOPED.index(item[0])):
            kubectl(
                local_cluster, "delete", kind.lower(), name, "--ignore-not-found", "--wait=false", check=False
            )
        kubectl(local_cluster, "delete", "namespace", namespace, "--wait=false", check=False)
