"""Dynamic local volumes for the local cluster, in the manner of rancher's local-path-provisioner.

A host-side controller (a recorded process of the cluster, like the control plane) serves the default
StorageClass `standard` (WaitForFirstConsumer, expansion allowed): for a claim the scheduler has
placed on a node it creates a directory under that node's state and a `local` PersistentVolume pinned
to the node; it grows volumes when a claim asks for more, and deletes released volumes and their
directories. The nodes share the machine's filesystem, so the controller writes the directories
itself instead of running a helper pod on the node.
It runs in the cluster's add-on controller process (`recluster.local.addons`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import httpx

from recluster.local.layout import Layout

PROVISIONER = "recluster.io/local-path"
STORAGE_CLASS = "standard"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)

log = logging.getLogger("recluster.provisioner")


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
        "allowVolumeExpansion": True,
    }


def volume_for(claim: dict[str, Any], node: str, path: Path) -> dict[str, Any]:
    """The PersistentVolume for a claim placed on `node` (pure)."""
    meta, spec = claim["metadata"], claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
            "labels": {"recluster.io/local-node": node},
        },
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "local": {"path": str(path)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            },
        },
    }


class Provisioner:
    def __init__(self, api: httpx.Client, layout: Layout, state_dir: Path) -> None:
        self.api = api
        self.layout = layout
        self.state_dir = state_dir

    def volume_dir(self, node: str, name: str) -> Path:
        prefix = f"{self.layout.name}-node"
        index = node.removeprefix(prefix) if node.startswith(prefix) else "x"
        return self.state_dir / "nodes" / f"n{index}" / "volumes" / name

    def ensure_storage_class(self) -> None:
        response = self.api.post("/apis/storage.k8s.io/v1/storageclasses", json=storage_class())
        if response.status_code not in (201, 409):
            response.raise_for_status()

    def sync_once(self) -> None:
        claims = self.api.get("/api/v1/persistentvolumeclaims").json()["items"]
        volumes = {
            v["metadata"]["name"]: v for v in self.api.get("/api/v1/persistentvolumes").json()["items"]
        }
        for claim in claims:
            self._provision(claim, volumes)
            self._expand(claim, volumes)
        for volume in volumes.values():
            self._reclaim(volume)

    def _ours(self, claim: dict[str, Any]) -> bool:
        annotations = claim["metadata"].get("annotations") or {}
        return any(annotations.get(key) == PROVISIONER for key in PROVISIONER_ANNOTATIONS)

    def _provision(self, claim: dict[str, Any], volumes: dict[str, dict[str, Any]]) -> None:
        meta = claim["metadata"]
        node = (meta.get("annotations") or {}).get(SELECTED_NODE)
        name = f"pvc-{meta['uid']}"
        if (
            claim.get("status", {}).get("phase") != "Pending"
            or not node
            or not self._ours(claim)
            or name in volumes
        ):
            return
        path = self.volume_dir(node, name)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # pods run as any uid; the directory is private to this claim
        response = self.api.post("/api/v1/persistentvolumes", json=volume_for(claim, node, path))
        if response.status_code not in (201, 409):
            log.warning(
                "creating %s for %s/%s failed: %s", name, meta["namespace"], meta["name"], response.text
            )
        else:
            log.info("provisioned %s for %s/%s on %s", name, meta["namespace"], meta["name"], node)

    def _expand(self, claim: dict[str, Any], volumes: dict[str, dict[str, Any]]) -> None:
        meta = claim["metadata"]
        volume = volumes.get(claim["spec"].get("volumeName") or "")
        if (
            volume is None
            or (volume["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by")
            != PROVISIONER
        ):
            return
        wanted = claim["spec"]["resources"]["requests"]["storage"]
        if volume["spec"]["capacity"]["storage"] != wanted:
            self.api.patch(
                f"/api/v1/persistentvolumes/{volume['metadata']['name']}",
                json={"spec": {"capacity": {"storage": wanted}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        if (claim.get("status") or {}).get("capacity", {}).get("storage") != wanted:
            self.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/{meta['name']}/status",
                json={"status": {"capacity": {"storage": wanted}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            log.info("expanded %s/%s to %s", meta["namespace"], meta["name"], wanted)

    def _reclaim(self, volume: dict[str, Any]) -> None:
        meta, spec = volume["metadata"], volume["spec"]
        if (meta.get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            return
        if (
            volume.get("status", {}).get("phase") != "Released"
            or spec.get("persistentVolumeReclaimPolicy") != "Delete"
        ):
            return
        path = Path(spec["local"]["path"])
        if path.is_relative_to(self.state_dir / "nodes"):
            shutil.rmtree(path, ignore_errors=True)
        self.api.delete(f"/api/v1/persistentvolumes/{meta['name']}")
        log.info("deleted %s and its directory", meta["name"])
