"""`recluster local down` removes every namespace, interface, route, mount, cgroup and process that a
cluster with nodes and running pods created."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.local.support import IMAGE, apply

from recluster.local.cluster import LocalCluster
from recluster.local.harness import eventually, ready_pods
from recluster.local.network import link_exists

pytestmark = pytest.mark.e2e


def recluster(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECLUSTER_LOCAL_STATE": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "recluster.cli", "local", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_down_leaves_nothing_behind(local_cluster: LocalCluster, tmp_path: Path) -> None:
    # local_cluster: the images and builds are ready, and this cluster takes another slot beside it
    state = tmp_path / "state"
    started = recluster("up", "--name", "rcdown", "--nodes", "1", state=state)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        cluster = LocalCluster.load(state)
        assert cluster is not None
        apply(
            cluster,
            "default",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "labels": {"app": "p"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "c",
                            "image": IMAGE,
                            "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
            },
        )
        eventually("the pod to run", lambda: ready_pods(cluster, "default", "app=p"), timeout=120)
        node = cluster.nodes[0]
        pod_netns = node.pod_network_namespaces()
        status = json.loads(recluster("status", "--json", state=state).stdout)
        pids = [p["pid"] for p in status["processes"].values() if p["pid"]]
        containers = node.cgroup_pids()
        assert pod_netns and containers and len(pids) >= 5

        stopped = recluster("down", state=state)
        assert stopped.returncode == 0, stopped.stderr[-2000:]
        assert not [pid for pid in pids + sorted(containers) if alive(pid)]
        assert not [p for p in pod_netns if p.exists()]
        assert not Path(f"/run/netns/{node.netns}").exists()
        assert not link_exists(cluster.layout.bridge)
        assert not link_exists(cluster.layout.node_veth(0))
        assert not [d for d in node.cgroup_dirs() if d.exists()]
        assert not node.containerd_home.is_symlink()
        mounts = Path("/proc/self/mountinfo").read_text()
        assert str(state) not in mounts
        routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
        assert cluster.layout.node_pod_cidr(0) not in routes
        unreachable = subprocess.run(
            ["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True, check=True
        ).stdout
        assert f"metric {cluster.layout.unreachable_metric}" not in unreachable
    finally:
        recluster("down", state=state)
