"""The operator deployed the way users deploy it: deploy/service_account.yaml, role.yaml,
role_binding.yaml and operator.yaml (non-root, read-only root filesystem, no capabilities), in the
project image on the local nodes. It takes the Lease and brings a REC to Running."""

from __future__ import annotations

import pytest
import yaml
from tests.e2e.local.support import IMAGE, apply

from recluster.local.cluster import LocalCluster
from recluster.local.harness import DEPLOY, eventually, get, kubectl, ready_pods, rec_manifest, wait_state

pytestmark = pytest.mark.e2e


def test_operator_deployment_runs_a_rec(local_cluster: LocalCluster, namespace: str) -> None:
    deployment = yaml.safe_load((DEPLOY / "operator.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = IMAGE  # the image every node imported (same name, this checkout's tag)
    container["resources"]["requests"] = {"cpu": "50m", "memory": "128Mi"}
    apply(local_cluster, namespace, deployment)
    pods = eventually(
        "the operator pod ready",
        lambda: ready_pods(local_cluster, namespace, "name=redis-enterprise-operator"),
        timeout=180,
        interval=2,
    )
    operator_pod = pods[0]["metadata"]["name"]
    security = get(local_cluster, namespace, "pod", operator_pod)["spec"]["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
    eventually(
        "the operator holds the Lease",
        lambda: (
            kubectl(
                local_cluster,
                "-n",
                namespace,
                "get",
                "lease",
                "redis-enterprise-operator",
                "-o",
                "jsonpath={.spec.holderIdentity}",
                check=False,
            ).stdout
            == operator_pod
        ),
        timeout=60,
    )
    apply(local_cluster, namespace, rec_manifest())
    wait_state(local_cluster, namespace, "Running", timeout=420)
    logs = kubectl(local_cluster, "-n", namespace, "logs", operator_pod, check=False).stdout
    assert "Forbidden" not in logs
