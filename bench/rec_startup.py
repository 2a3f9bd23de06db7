"""REC figures on the local cluster: time from `kubectl apply` to `state: Running` for a 3-node REC
(median of 5 runs, each in a fresh namespace, deleted afterwards), then the operator's idle memory
and CPU while it manages 5 Running RECs.

    .venv/bin/python bench/rec_startup.py                      # a new local cluster (minutes)
    RECLUSTER_TEST_CLUSTER=<state dir> .venv/bin/python bench/rec_startup.py   # reuse one

The operator runs on the host (as in the tests) with the admin kubeconfig and watches the five
namespaces (WATCH_NAMESPACE as a list)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from recluster.api.rec import API_VERSION as REC_API_VERSION
from recluster.api.rec import KIND as REC_KIND
from recluster.local.cluster import LocalCluster

RUNS = 5
RESOURCES = {
    "redisEnterpriseNodeResources": {
        "requests": {"cpu": "50m", "memory": "384Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    "redisEnterpriseServicesRiggerResources": {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"cpu": "100m", "memory": "128Mi"},
    },
    # 15 node pods on 3 kubelets: spread, not one per host
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"redis.io/role": "node"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    },
}


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None, check: bool = True) -> str:
    argv = [str(cluster.kube_dir() / "kubectl"), "--kubeconfig", str(cluster.kubeconfig_path), *args]
    result = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=120, check=False)
    if check and result.returncode:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def rec(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": REC_API_VERSION,
            "kind": REC_KIND,
            "metadata": {"name": name},
            "spec": {"nodes": 3, **RESOURCES},
        }
    )


def state(cluster: LocalCluster, namespace: str) -> str:
    out = kubectl(
        cluster, "-n", namespace, "get", "rec", "rec", "-o", "jsonpath={.status.state}", check=False
    )
    return out.strip()


def wait_for(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.5)


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds user+system) of a process."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    console = Console(stderr=True)
    reuse = os.environ.get("RECLUSTER_TEST_CLUSTER")
    state_dir = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="rc-bench-rec-"))
    cluster = (
        LocalCluster.load(state_dir) if reuse else LocalCluster.create(state_dir, name="rcbrec", fsync=False)
    )
    assert cluster is not None
    cluster.up(console, timeout=300, nodes=3)
    repo = Path(__file__).resolve().parents[1]
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(repo / "deploy" / "crds"))
    stamp = str(int(time.time()))[-6:]
    namespaces = [f"bench-{stamp}-{i}" for i in range(RUNS)]
    for namespace in namespaces:
        kubectl(cluster, "create", "namespace", namespace)
    log = open(state_dir / f"bench-operator-{stamp}.log", "wb")  # noqa: SIM115
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig_path),
        "WATCH_NAMESPACE": ",".join(namespaces),
        "POD_NAMESPACE": namespaces[0],
        "POD_NAME": "bench",
        "OPERATOR_HTTP_HOST": "127.0.0.1",
        "OPERATOR_HTTP_PORT": str(free_port()),
    }
    operator = subprocess.Popen(
        [sys.executable, "-m", "recluster.cli", "operator"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=repo,
    )
    try:
        time.sleep(3)
        durations = []
        for i, namespace in enumerate(namespaces):
            started = time.monotonic()
            kubectl(cluster, "-n", namespace, "apply", "-f", "-", stdin=rec("rec"))
            wait_for(f"Running in {namespace}", lambda ns=namespace: state(cluster, ns) == "Running", 600)
            durations.append(time.monotonic() - started)
            print(f"run {i + 1}: apply -> Running {durations[-1]:.1f}s", flush=True)
            if i < RUNS - 1:  # keep the last one; the others go, so every run starts from an idle cluster
                kubectl(cluster, "-n", namespace, "delete", "rec", "rec", "--timeout=300s")
        print(
            f"apply -> Running, 3 nodes: median {statistics.median(durations):.1f}s "
            f"(min {min(durations):.1f}, max {max(durations):.1f}, n={len(durations)})"
        )

        for namespace in namespaces[:-1]:
            kubectl(cluster, "-n", namespace, "apply", "-f", "-", stdin=rec("rec"))
        for namespace in namespaces:
            wait_for(f"Running in {namespace}", lambda ns=namespace: state(cluster, ns) == "Running", 900)
        time.sleep(10)
        rss0, cpu0 = proc_stats(operator.pid)
        window = 60.0
        time.sleep(window)
        rss1, cpu1 = proc_stats(operator.pid)
        print(
            f"operator idle with {RUNS} Running RECs: RSS {rss1:.0f} MiB (was {rss0:.0f}), "
            f"CPU {100 * (cpu1 - cpu0) / window:.1f}% of one core over {window:.0f}s"
        )
    finally:
        for namespace in namespaces:
            kubectl(cluster, "delete", "namespace", namespace, "--wait=false", check=False)
        time.sleep(20)  # let the operator release the finalizers before it goes
        operator.terminate()
        operator.wait(timeout=30)
        log.close()
        for namespace in namespaces:
            kubectl(
                cluster,
                "-n",
                namespace,
                "patch",
                "rec",
                "rec",
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":[]}}',
                check=False,
            )
        if not reuse:
            cluster.down(console)
            shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
