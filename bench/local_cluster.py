"""Local-cluster figures: `local up` with 3 nodes from a new state directory (the builds cached) and
again after `down`, the time from applying a StatefulSet of 3 project-image pods (PVCs, readiness
probe, anti-affinity) to 3/3 Ready, and the memory the cluster holds at idle.

    .venv/bin/python bench/local_cluster.py [--nodes 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from recluster.local import processes
from recluster.local.cluster import LocalCluster
from recluster.local.images import default_tag
from recluster.local.paths import repo_dir


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory_report(cluster: LocalCluster) -> None:
    records = processes.running(cluster.paths.run)
    for node in cluster.nodes:
        records += processes.running(node.run_dir)
    groups: dict[str, float] = {}
    seen: set[int] = set()
    for record in records:
        pids = set(processes.session_members(record)) - seen
        seen |= pids
        groups[record.name] = sum(rss_mib(pid) for pid in pids)
    for node in cluster.nodes:
        containerd_pid = int((node.containerd_home / "containerd.pid").read_text())
        shims = [p for p in node.cgroup_pids() | {containerd_pid} if p not in seen]
        groups[f"containerd+pods-n{node.index}"] = sum(rss_mib(pid) for pid in shims)
    for name, mib in sorted(groups.items()):
        print(f"  {name:<28} {mib:8.1f} MiB")
    print(f"  {'total (RSS)':<28} {sum(groups.values()):8.1f} MiB")


def statefulset(image: str) -> dict[str, object]:
    labels = {"app": "bench"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "serviceName": "bench",
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": labels},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                    "containers": [
                        {
                            "name": "redis",
                            "image": image,
                            "command": ["redis-server", "--dir", "/data", "--protected-mode", "no"],
                            "readinessProbe": {
                                "exec": {"command": ["redis-cli", "ping"]},
                                "periodSeconds": 1,
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "64Mi"}},
                    },
                }
            ],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    quiet = Console(stderr=True, quiet=True)
    state = Path(tempfile.mkdtemp(prefix="rc-bench-"))
    cluster = LocalCluster.create(state, name="rcbench", fsync=False)
    try:
        started = time.monotonic()
        cluster.up(quiet, timeout=300, nodes=args.nodes)
        print(f"local up, {args.nodes} nodes, new state (builds cached): {time.monotonic() - started:.1f}s")

        started = time.monotonic()
        cluster.kubectl("apply", "-f", "-", input=json.dumps(statefulset(default_tag(Path(repo_dir())))))
        cluster.kubectl("rollout", "status", "statefulset/bench", "--timeout=300s", timeout=320)
        print(
            f"StatefulSet of 3 (PVCs, probe, anti-affinity) to 3/3 Ready: {time.monotonic() - started:.1f}s"
        )

        time.sleep(20)
        print("memory at idle (control plane, add-ons, nodes, CoreDNS and the 3 pods):")
        memory_report(cluster)

        cluster.down(quiet)
        started = time.monotonic()
        cluster.up(quiet, timeout=300)
        print(f"local up again after down (warm, same state): {time.monotonic() - started:.1f}s")
    finally:
        cluster.down(quiet)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
