"""Failover of a database as its clients see it on Kubernetes: the time from deleting the pod that
holds the master to the first write a *new* master takes through the database's `<db>` Service
address (the same ClusterIP before and after), median and p95 over --runs runs (target: median
<= 5 s).

A write every 50 ms, each on a new connection, in one MULTI/EXEC with `INFO server` and ROLE, so each
write names the server that took it (recluster.clients.write_probe). The old master is the server
(run_id) that took 50 writes confirmed by `WAIT 1` just before the fault; the failover is over at the
first write taken by a server with another run_id that says it is master. The leaving master keeps
taking writes while its node daemon hands the role over on SIGTERM, and the Service still leads to it,
so the first successful write says nothing about the failover; it is printed beside, as before. Per run:

  first write on the new master   the failover time (the headline)
  first successful write          any server, the old master's hand-off included (the old figure)
  longest gap                     the longest time without any successful write, fault -> new master
  last write on the old master    how long its hand-off kept taking writes
  lost                            WAIT-confirmed writes missing on the new master (read back from a
                                  server with another run_id and role master), and writes the old
                                  master acknowledged without WAIT that the new master does not have

The probe goes on --tail seconds after the first write on the new master, to see whether the old
master still takes writes then. Each run waits until the cluster is whole again (three ready node
pods, REC Running, both shards of the database active, the label on exactly one pod) before it
deletes the next master's pod.

    .venv/bin/python bench/redb_failover.py [--runs 10] [--tail 2] [--state-dir DIR]

--state-dir reuses a running local cluster (as RECLUSTER_TEST_CLUSTER does for the tests); without
it a new one is made and removed at the end. The operator runs on the host with the RBAC of deploy/,
as in the end-to-end tests (the setup helpers are theirs, recluster.local.harness; the write probe is
recluster.clients.write_probe).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from rich.console import Console

from recluster.api.ports import SENTINEL_PORT
from recluster.clients.write_probe import FailoverWrites, Server, probe_failover, read_back, write_confirmed
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    NODE_SELECTOR,
    apply_redb,
    eventually,
    kubectl,
    labelled_pods,
    operator_namespace,
    ready_pods,
    rec_manifest,
    redb_manifest,
    redb_status,
    secret_data,
    service,
    start_operator,
    wait_active,
    wait_state,
)


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

    def armed() -> bool:  # the pods' addresses now: a pod may have come back at a new one
        return failover_armed([p["status"]["podIP"] for p in ready_pods(cluster, ns, NODE_SELECTOR)], name)

    eventually("every sentinel knows the replica, linked", armed, timeout=300)


def failover_armed(ips: list[str], name: str) -> bool:
    """Every node's sentinel sees the database's replica up with its link to the master up: a fault
    made before that tests the discovery of a returning replica, not failover."""
    for ip in ips:
        client = redis.Redis(
            host=ip, port=SENTINEL_PORT, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )
        try:
            replicas = client.execute_command("SENTINEL", "REPLICAS", name) or []  # type: ignore[no-untyped-call]
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        # redis-py parses the reply into dicts; a raw reply is a flat key/value list per replica
        rows = [r if isinstance(r, dict) else dict(zip(r[::2], r[1::2], strict=False)) for r in replicas]
        if not any("s_down" not in r.get("flags", "") and r.get("master-link-status") == "ok" for r in rows):
            return False
    return True


def confirmed_on_master(
    cluster: LocalCluster, ns: str, uid: str, address: str, port: int, password: str, keys: list[str]
) -> tuple[Server, str, list[str]]:
    """Write `keys` with WAIT 1 through the Service until every one is confirmed on the labelled
    master: that master (the old master of the run), its pod's name and the keys."""

    def attempt() -> tuple[Server, str, list[str]] | None:
        pods = labelled_pods(cluster, ns, uid)
        server, confirmed = write_confirmed(address, port, password, keys)
        if len(pods) != 1 or server is None or server.role != "master":
            return None
        if server.addr != pods[0]["status"].get("podIP") or len(confirmed) != len(keys):
            return None
        return server, pods[0]["metadata"]["name"], confirmed

    result: tuple[Server, str, list[str]] = eventually("confirmed writes on the master", attempt, timeout=120)
    return result


def lost_on_new_master(
    address: str, port: int, password: str, writes: FailoverWrites, keys: list[str]
) -> tuple[str, list[str]]:
    """Which of `keys` a new master (another run_id than the old master's, role master) lacks, read
    through the Service: the address it announces and the missing keys."""

    def attempt() -> tuple[str, list[str]] | None:
        got = read_back(address, port, password, keys)
        if got is None or got[0].run_id == writes.old.run_id or got[0].role != "master":
            return None
        return got[0].addr, got[1]

    result: tuple[str, list[str]] = eventually("a read on the new master", attempt, timeout=120)
    return result


# A fault: given the cluster, the namespace and the master's pod, break something and return what
# undoes it (called before the next run waits for the cluster to be whole again).
Fault = Callable[[LocalCluster, str, str], Callable[[], None]]


def delete_pod(cluster: LocalCluster, ns: str, pod: str) -> Callable[[], None]:
    kubectl(cluster, "-n", ns, "delete", "pod", pod, "--wait=false")
    return lambda: None


def node_of(cluster: LocalCluster, ns: str, pod: str) -> str:
    return str(
        json.loads(kubectl(cluster, "-n", ns, "get", "pod", pod, "-o", "json").stdout)["spec"]["nodeName"]
    )


def _containers_started(cluster: LocalCluster, ns: str, node: str) -> dict[str, tuple[str, int, bool]]:
    """The namespace's pods on `node`: name -> (uid, restarts of its containers, Ready)."""
    pods = json.loads(kubectl(cluster, "-n", ns, "get", "pods", "-o", "json").stdout)["items"]
    return {
        p["metadata"]["name"]: (
            p["metadata"]["uid"],
            sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or []),
            any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])),
        )
        for p in pods
        if p["spec"].get("nodeName") == node
    }


def stop_node(cluster: LocalCluster, ns: str, pod: str) -> Callable[[], None]:
    """The pod's node crashes: its kubelet, containerd and every container killed at once. Undone
    when the node runs again and every pod that was on it has started again (restarted or made
    anew): the pods' Ready condition in the API is the last one the dead kubelet posted, so
    without this the next run could fault a second node while this one's pods still start."""
    node = node_of(cluster, ns, pod)
    before = _containers_started(cluster, ns, node)
    cluster.stop_node(node)

    def undo() -> None:
        cluster.start_node(node, timeout=300)

        def restarted() -> bool:
            now = _containers_started(cluster, ns, node)
            return all(
                name not in now or now[name][0] != uid or (now[name][1] > restarts and now[name][2])
                for name, (uid, restarts, _) in before.items()
            )

        eventually(f"the pods of {node} to start again", restarted, timeout=300)

    return undo


def isolate_node(cluster: LocalCluster, ns: str, pod: str) -> Callable[[], None]:
    """The pod's node is cut off the network (its processes run on)."""
    node = node_of(cluster, ns, pod)
    cluster.isolate_node(node)
    return lambda: cluster.heal_node(node) and None


FAULTS: dict[str, Fault] = {"delete": delete_pod, "stop": stop_node, "isolate": isolate_node}
VERBS = {"delete": "deleting pod", "stop": "stopping the node of", "isolate": "isolating the node of"}


def where_things_run(cluster: LocalCluster, ns: str) -> str:
    """Which node runs the node pods, the rigger, the operator's helpers and CoreDNS (a fault that
    takes the rigger or a DNS server along is a harder one)."""
    out = []
    lease = json.loads(kubectl(cluster, "-n", ns, "get", "lease", "-o", "json").stdout)["items"]
    holders = [item["spec"].get("holderIdentity") for item in lease if "rigger" in item["metadata"]["name"]]
    out.append(f"rigger Lease: {holders[0] if holders else 'none'}")
    for namespace in (ns, "kube-system"):
        pods = json.loads(kubectl(cluster, "-n", namespace, "get", "pods", "-o", "json").stdout)
        for pod in pods["items"]:
            out.append(f"{pod['metadata']['name']}@{pod['spec'].get('nodeName', '?')}")
    return ", ".join(out)


def run(
    cluster: LocalCluster,
    runs: int,
    tail: float,
    workdir: Path,
    fault_name: str = "delete",
    attempt_timeout: float = 2.0,
) -> None:
    fault = FAULTS[fault_name]
    with operator_namespace(cluster) as ns:
        operator = start_operator(cluster, ns, workdir)
        try:
            print(f"namespace {ns}: REC and REDB ...", flush=True)
            kubectl(cluster, "-n", ns, "apply", "-f", "-", input=json.dumps(rec_manifest()))
            wait_state(cluster, ns, "Running", timeout=900)
            assert apply_redb(cluster, ns, redb_manifest("bench", replication=True)) == ""
            status = wait_active(cluster, ns, "bench")
            uid, port = status["databaseUID"], int(status["internalEndpoints"][0]["port"])
            password = eventually("the secret", lambda: secret_data(cluster, ns, "redb-bench"))["password"]
            address = eventually("Service bench", lambda: service(cluster, ns, "bench"))["spec"]["clusterIP"]
            results: list[FailoverWrites] = []
            lost_confirmed = confirmed_total = lost_acked = acked_total = 0
            for i in range(runs):
                whole_again(cluster, ns, "bench", uid)
                keys = [f"confirmed-{i}-{n}" for n in range(50)]
                old, victim, confirmed = confirmed_on_master(cluster, ns, uid, address, port, password, keys)
                print(
                    f"run {i + 1}: {VERBS[fault_name]} {victim} at {time.strftime('%H:%M:%S')} "
                    f"({where_things_run(cluster, ns)})",
                    flush=True,
                )
                started = time.monotonic()
                undo = fault(cluster, ns, victim)
                try:
                    writes = probe_failover(
                        address, port, password, old, started, f"after-{i}", 300, tail,
                        attempt_timeout=attempt_timeout,
                    )
                finally:
                    undo()
                if writes.first_new is None:
                    print(f"run {i + 1}/{runs}: {writes.summary()}", flush=True)
                    raise SystemExit(f"run {i + 1}: no write on a new master after 300 s")
                acked = [t.key for t in writes.old_writes]
                pod, missing = lost_on_new_master(address, port, password, writes, confirmed + acked)
                lost_c = [k for k in missing if k in confirmed]
                lost_a = [k for k in missing if k not in confirmed]
                results.append(writes)
                lost_confirmed += len(lost_c)
                confirmed_total += len(confirmed)
                lost_acked += len(lost_a)
                acked_total += len(acked)
                print(
                    f"run {i + 1}/{runs}: {fault_name} {victim}: {writes.summary()}; read on {pod}: "
                    f"WAIT-confirmed lost {len(lost_c)}/{len(confirmed)}, old master's unconfirmed "
                    f"writes lost {len(lost_a)}/{len(acked)}",
                    flush=True,
                )
            print()
            for label, values in (
                ("first write on the new master (failover time)", [w.since(w.first_new) for w in results]),
                ("first successful write, any server (old figure)", [w.since(w.first_any) for w in results]),
                ("longest time without a successful write", [w.longest_gap for w in results]),
                ("last write taken by the old master", [w.since(w.last_old) for w in results]),
            ):
                got = [v for v in values if v is not None]
                line = f"{fault_name} -> {label}, {len(got)}/{runs} runs"
                if got:
                    line += (
                        f": median {statistics.median(got):.2f} s, p95 {percentile(got, 0.95):.2f} s, "
                        f"min {min(got):.2f} s, max {max(got):.2f} s"
                    )
                print(line)
            late = [w.old_after_new for w in results if w.old_after_new]
            print(
                f"writes the old master took after the new master's first: {sum(late)} (in {len(late)} runs)"
            )
            print(
                f"WAIT-confirmed writes lost: {lost_confirmed}/{confirmed_total}; writes the old master "
                f"acknowledged (no WAIT) lost: {lost_acked}/{acked_total}"
            )
            print(
                f"through Service {address}:{port}, {attempt_timeout:g} s per write attempt; target: median "
                "<= 5 s (first write on the new master)"
            )
            # when the rigger moved the label (its log), to tell a slow Sentinel from a slow rigger
            log = kubectl(cluster, "-n", ns, "logs", "deploy/" + "rec-services-rigger", check=False).stdout
            for line in log.splitlines():
                if "labels:" in line or "new master" in line:
                    print("rigger:", line)
            kubectl(
                cluster, "-n", ns, "delete", "redb", "bench", "--wait=true", "--timeout=180s", check=False
            )
        finally:
            operator.stop()


def main(default_fault: str = "delete", doc: str | None = None) -> None:
    parser = argparse.ArgumentParser(description=(doc or __doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--fault",
        choices=sorted(FAULTS),
        default=default_fault,
        help="delete the master's pod, stop its node, or cut its node off the network",
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--tail", type=float, default=2.0, help="seconds to keep writing after the new master's first write"
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="reuse this running local cluster")
    parser.add_argument(
        "--attempt-timeout",
        type=float,
        default=2.0,
        help="connect/read timeout of each write attempt (2 s, a common client's; when the old master's "
        "node is cut off every attempt through the Service waits this long, so the figures step by it)",
    )
    args = parser.parse_args()
    console = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="redb-bench-"))
    if args.state_dir is not None:
        cluster = LocalCluster.load(args.state_dir)
        if cluster is None:
            raise SystemExit(f"no local cluster in {args.state_dir}")
        cluster.up(console, timeout=400, nodes=3)
        try:
            run(cluster, args.runs, args.tail, workdir, args.fault, args.attempt_timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    state = workdir / "cluster"
    cluster = LocalCluster.create(state, name="rcbench", fsync=False)
    try:
        cluster.up(console, timeout=400, nodes=3)
        run(cluster, args.runs, args.tail, workdir, args.fault, args.attempt_timeout)
    finally:
        cluster.down(console)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
