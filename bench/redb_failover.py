"""Failover of a database as its clients see it on Kubernetes: the time from deleting the pod that
holds the master to the first successful write through the database's `<db>` Service address (the
same ClusterIP before and after), median and p95 over --runs runs (target: median <= 5 s).

Each run waits until the cluster is whole again (three ready node pods, REC Running, both shards of
the database active, the label on exactly one pod) before it deletes the next master's pod.

    .venv/bin/python bench/redb_failover.py [--runs 10] [--state-dir DIR]

--state-dir reuses a running local cluster (as RECLUSTER_TEST_CLUSTER does for the tests); without
it a new one is made and removed at the end. The operator runs on the host with the RBAC of deploy/,
as in the end-to-end tests.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from tests.e2e.local.support import eventually, kubectl, ready_pods
from tests.e2e.redb.support import (
    NODE_SELECTOR,
    apply_redb,
    labelled_pods,
    redb_manifest,
    redb_status,
    secret_data,
    service,
    try_write,
    wait_active,
)
from tests.integration.operator.support import (
    operator_namespace,
    rec_manifest,
    start_operator,
    wait_state,
)

from recluster.local.cluster import LocalCluster


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def whole_again(cluster: LocalCluster, ns: str, name: str, uid: str) -> None:
    eventually("three ready node pods", lambda: len(ready_pods(cluster, ns, NODE_SELECTOR)) == 3, timeout=600)
    wait_state(cluster, ns, "Running", timeout=600)
    eventually(
        "both shards active",
        lambda: redb_status(cluster, ns, name).get("shardStatuses") == {"active": 2},
        timeout=600,
    )
    eventually("one labelled master pod", lambda: len(labelled_pods(cluster, ns, uid)) == 1, timeout=120)


def run(cluster: LocalCluster, runs: int, workdir: Path) -> None:
    with operator_namespace(cluster) as ns:
        operator = start_operator(cluster, ns, workdir)
        try:
            print(f"namespace {ns}: REC and REDB ...", flush=True)
            kubectl(cluster, "-n", ns, "apply", "-f", "-", input=__import__("json").dumps(rec_manifest()))
            wait_state(cluster, ns, "Running", timeout=900)
            assert apply_redb(cluster, ns, redb_manifest("bench", replication=True)) == ""
            status = wait_active(cluster, ns, "bench")
            uid, port = status["databaseUID"], int(status["internalEndpoints"][0]["port"])
            password = eventually("the secret", lambda: secret_data(cluster, ns, "redb-bench"))["password"]
            address = eventually("Service bench", lambda: service(cluster, ns, "bench"))["spec"]["clusterIP"]
            times: list[float] = []
            for i in range(runs):
                whole_again(cluster, ns, "bench", uid)
                eventually(
                    "a write before", lambda: try_write(address, port, password, "before", "1"), timeout=60
                )
                victim = labelled_pods(cluster, ns, uid)[0]["metadata"]["name"]
                started = time.monotonic()
                kubectl(cluster, "-n", ns, "delete", "pod", victim, "--wait=false")
                eventually(
                    "a write after",
                    lambda i=i: try_write(address, port, password, f"after-{i}", "1"),
                    timeout=300,
                    interval=0.05,
                )
                elapsed = time.monotonic() - started
                times.append(elapsed)
                print(f"run {i + 1}/{runs}: deleted {victim}, first write after {elapsed:.2f} s", flush=True)
            print(
                f"pod deletion -> first write through Service {address}:{port}, {runs} runs: "
                f"median {statistics.median(times):.2f} s, p95 {percentile(times, 0.95):.2f} s, "
                f"min {min(times):.2f} s, max {max(times):.2f} s (target: median <= 5 s)"
            )
            kubectl(
                cluster, "-n", ns, "delete", "redb", "bench", "--wait=true", "--timeout=180s", check=False
            )
        finally:
            operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--state-dir", type=Path, default=None, help="reuse this running local cluster")
    args = parser.parse_args()
    console = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="redb-bench-"))
    if args.state_dir is not None:
        cluster = LocalCluster.load(args.state_dir)
        if cluster is None:
            raise SystemExit(f"no local cluster in {args.state_dir}")
        cluster.up(console, timeout=400, nodes=3)
        try:
            run(cluster, args.runs, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    state = workdir / "cluster"
    cluster = LocalCluster.create(state, name="rcbench", fsync=False)
    try:
        cluster.up(console, timeout=400, nodes=3)
        run(cluster, args.runs, workdir)
    finally:
        cluster.down(console)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
