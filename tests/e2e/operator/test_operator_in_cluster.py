"""The operator deployed the way users deploy it: deploy/service_account.yaml, role.yaml,
role_binding.yaml and operator.yaml (non-root, read-only root filesystem, no capabilities), in the
project image on the local nodes. It takes the Lease and brings a REC to Running; then the project is
upgraded the way docs/upgrade.md says, with a replicated database taking WAIT-confirmed writes: the
REC's image moves from tag A to tag B (two images of this checkout: the same code under two version
labels) and rolls its pods one at a time, then the operator's Deployment moves to B and takes over
the running REC and REDBs without restarting anything."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.local.support import IMAGE, apply
from tests.e2e.operator.test_operator_scale_rolling import Writer, _converged

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    DEPLOY,
    NODE_SELECTOR,
    eventually,
    get,
    kubectl,
    ready_pods,
    rec_manifest,
    redb_manifest,
    secret_data,
    wait_active,
    wait_state,
)
from recluster.local.images import IMAGE_NAME, ensure_project_image
from recluster.local.paths import cache_dir, repo_dir

pytestmark = pytest.mark.e2e

OPERATOR_SELECTOR = "name=redis-enterprise-operator"
RIGGER_SELECTOR = "redis.io/cluster=rec,redis.io/role=services-rigger"
TAG_B = "0.1.0-upgrade-b"
IMAGE_B = f"{IMAGE_NAME}:{TAG_B}"
DB = "upgrade-writes"


def operator_deployment(image: str) -> dict[str, Any]:
    deployment: dict[str, Any] = yaml.safe_load((DEPLOY / "operator.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    for entry in container["env"]:
        if entry["name"] == "OPERATOR_DEFAULT_IMAGE":  # kept equal to the operator's image, as the chart does
            entry["value"] = image
    container["resources"]["requests"] = {"cpu": "50m", "memory": "128Mi"}
    return deployment


def lease_holder(cluster: LocalCluster, namespace: str) -> str:
    return kubectl(
        cluster, "-n", namespace, "get", "lease", "redis-enterprise-operator",
        "-o", "jsonpath={.spec.holderIdentity}", check=False,
    ).stdout


def running_operator(cluster: LocalCluster, namespace: str, image: str) -> str:
    """The ready operator pod running `image` once it holds the Lease."""

    def holder() -> str | None:
        pods = [p for p in ready_pods(cluster, namespace, OPERATOR_SELECTOR)
                if p["spec"]["containers"][0]["image"] == image]
        name = pods[0]["metadata"]["name"] if len(pods) == 1 else None
        return name if name and lease_holder(cluster, namespace) == name else None

    name: str = eventually(f"the operator pod on {image} holding the Lease", holder, timeout=180, interval=2)
    return name


def writing_to_new_database(cluster: LocalCluster, namespace: str, name: str) -> tuple[Writer, str]:
    """A replicated REDB `name` made active and a Writer confirming writes to it; its engine version."""
    apply(cluster, namespace, redb_manifest(name, replication=True))
    version = str(wait_active(cluster, namespace, name, timeout=180).get("version"))
    password = (secret_data(cluster, namespace, f"redb-{name}") or {})["password"]
    writer = Writer(cluster, namespace, db=name, password=password)
    writer.start()
    eventually("first confirmed writes", lambda: len(writer.confirmed) > 10, timeout=60)
    return writer, version


def rolled_to(cluster: LocalCluster, namespace: str, image: str) -> bool:
    """Every node pod and every rigger pod on `image`, the rigger's Deployment done, the REC converged."""
    nodes = ready_pods(cluster, namespace, NODE_SELECTOR)
    rigger = get(cluster, namespace, "deployment", "rec-services-rigger")
    status, wanted = rigger.get("status", {}), rigger["spec"]["replicas"]
    rigger_pods = get(cluster, namespace, "pods", "-l", RIGGER_SELECTOR)["items"]
    return (
        len(nodes) == 3
        and all(p["spec"]["containers"][0]["image"] == image for p in nodes + rigger_pods)
        and status.get("observedGeneration") == rigger["metadata"]["generation"]
        and status.get("updatedReplicas") == status.get("readyReplicas") == wanted == len(rigger_pods)
        and _converged(cluster, namespace, 3)
    )


def stop_writer(writer: Writer) -> None:
    writer.stopping.set()
    writer.join(timeout=30)


def check_writes(writer: Writer, what: str) -> None:
    """Print the stopped writer's figures, and fail if a confirmed write is gone."""
    lost = writer.lost()
    print(
        f"{what}; confirmed writes {len(writer.confirmed)}, errors {writer.errors}, "
        f"longest gap {writer.longest_gap:.1f}s (during {writer.longest_gap_phase})"
    )
    assert lost == [], f"{len(lost)} confirmed writes lost, e.g. {lost[:10]}, phases {writer.phases}"


def pods_by_uid(cluster: LocalCluster, namespace: str, selector: str) -> dict[str, tuple[str, str]]:
    return {
        p["metadata"]["name"]: (p["metadata"]["uid"], p["spec"]["containers"][0]["image"])
        for p in get(cluster, namespace, "pods", "-l", selector)["items"]
    }


@pytest.mark.timeout(1500)
def test_operator_deployment_runs_a_rec_and_upgrades_image_and_operator_keeping_writes(
    local_cluster: LocalCluster, namespace: str
) -> None:
    # image B first (the same inputs as A but its version label: only the config layer is new)
    local_cluster.load_image(ensure_project_image(Path(repo_dir()), cache_dir(), IMAGE_B, version=TAG_B))

    apply(local_cluster, namespace, operator_deployment(IMAGE))
    operator_pod = running_operator(local_cluster, namespace, IMAGE)
    security = get(local_cluster, namespace, "pod", operator_pod)["spec"]["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]

    # the REC names its image (tag A) as a user pinning a version does
    image_a = {"repository": IMAGE_NAME, "versionTag": IMAGE.rpartition(":")[2]}
    apply(local_cluster, namespace, rec_manifest(
        redisEnterpriseImageSpec=image_a, redisEnterpriseServicesRiggerImageSpec=image_a))
    wait_state(local_cluster, namespace, "Running", timeout=420)
    writer, _ = writing_to_new_database(local_cluster, namespace, DB)
    try:
        writer.mark("REC image A -> B")
        image_b = {"repository": IMAGE_NAME, "versionTag": TAG_B}
        patch = {"redisEnterpriseImageSpec": image_b, "redisEnterpriseServicesRiggerImageSpec": image_b}
        kubectl(local_cluster, "-n", namespace, "patch", "rec", "rec", "--type=merge", "-p",
                yaml.safe_dump({"spec": patch}))

        started = time.monotonic()
        eventually("every node pod and the rigger on image B, the REC Running",
                   lambda: rolled_to(local_cluster, namespace, IMAGE_B), timeout=720, interval=3)
        rolled_in = time.monotonic() - started
        wait_active(local_cluster, namespace, DB, timeout=120)

        writer.mark("operator A -> B")
        nodes_before = pods_by_uid(local_cluster, namespace, NODE_SELECTOR)
        rigger_before = pods_by_uid(local_cluster, namespace, RIGGER_SELECTOR)
        generation = get(local_cluster, namespace, "statefulset", "rec")["metadata"]["generation"]
        apply(local_cluster, namespace, operator_deployment(IMAGE_B))
        new_operator = running_operator(local_cluster, namespace, IMAGE_B)
        assert new_operator != operator_pod
        # the new operator acts: a database made now becomes active, and the running one stays so
        apply(local_cluster, namespace, redb_manifest("after-upgrade"))
        wait_active(local_cluster, namespace, "after-upgrade", timeout=180)
        wait_active(local_cluster, namespace, DB, timeout=30)
        writer.mark("after the upgrades")
        confirmed = len(writer.confirmed)
        eventually("writes after the upgrades", lambda: len(writer.confirmed) > confirmed + 10, timeout=60)
    finally:
        stop_writer(writer)
    check_writes(writer, f"upgrade A -> B: REC rolled in {rolled_in:.0f} s")
    # taking over restarted nothing: same pods, same StatefulSet generation, the REC Running
    assert pods_by_uid(local_cluster, namespace, NODE_SELECTOR) == nodes_before
    assert pods_by_uid(local_cluster, namespace, RIGGER_SELECTOR) == rigger_before
    assert get(local_cluster, namespace, "statefulset", "rec")["metadata"]["generation"] == generation
    wait_state(local_cluster, namespace, "Running", timeout=30)
    for pod in (operator_pod, new_operator):
        logs = kubectl(local_cluster, "-n", namespace, "logs", pod, check=False).stdout
        assert "Forbidden" not in logs
