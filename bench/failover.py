"""Failover time of a replicated database: from the SIGKILL of the master's node (daemon and shards)
to the first successful write through Sentinel discovery (port 8001), over several runs.

    .venv/bin/python bench/failover.py [--runs 10] [--down-after-ms 2000]

Each run: wait until the replica is in sync and every sentinel knows it, kill the master's node, write
through redis-py's Sentinel client until a write succeeds, then restart the node and wait until it
is ready again. Prints every run, the median and the p95. Target: median at most 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from recluster.node.devcluster import LoopbackCluster

DB = "bench-failover"
VERBOSE = False


def wait_replica_known(cluster: LoopbackCluster, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    for host, port in cluster.sentinels():
        probe = redis.Redis(host=host, port=port, socket_timeout=1)
        try:
            while True:
                try:
                    master = probe.sentinel_master(DB)
                    replicas = [r for r in probe.sentinel_slaves(DB)
                                if "s_down" not in r["flags"] and r.get("master-link-status") == "ok"]
                    if "s_down" not in master["flags"] and replicas:
                        break
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sentinel {host} does not know a healthy replica of {DB}")
                time.sleep(0.2)
        finally:
            probe.close()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def one_run(cluster: LoopbackCluster, sentinel: Sentinel) -> float:
    host, _ = sentinel.discover_master(DB)
    victim = next(n.index for n in cluster.nodes if n.addr == host)
    # no client-side retry/backoff: the loop below retries every 50 ms, so the figure is the cluster's
    # (redis-py's default client retry backs off exponentially with jitter, which would add up to
    # seconds of client-side waiting to the figure)
    client = sentinel.master_for(DB, socket_timeout=0.5, socket_connect_timeout=0.5)
    client.set_retry(Retry(NoBackoff(), 0))
    client.set("before", 1)
    killed_at = time.monotonic()
    cluster.kill_node(victim)
    last_error = ""
    while True:
        try:
            client.set("after", 1)
            took = time.monotonic() - killed_at
            break
        except redis.RedisError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:80]}"
            if error != last_error and VERBOSE:
                print(f"  {time.monotonic() - killed_at:5.2f} s: {error}", flush=True)
            last_error = error
            if time.monotonic() - killed_at > 120:
                raise TimeoutError("no successful write 120 s after the kill") from None
            time.sleep(0.05)
    cluster.start_node(victim)
    asyncio.run(cluster.wait_ready([victim], timeout_s=120))
    return took


async def setup(cluster: LoopbackCluster) -> None:
    await cluster.start(timeout_s=180)
    await cluster.wait_ready(timeout_s=120)
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": DB, "memory_size": 64 * 1024 * 1024, "replication": True})
        await api.wait_bdb_status(bdb["uid"], timeout_s=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--down-after-ms", type=int, default=2000)
    parser.add_argument("--verbose", action="store_true", help="print each new error while waiting")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    root = Path(tempfile.mkdtemp(prefix="recluster-bench-failover-"))
    cluster = LoopbackCluster(3, root, down_after_ms=args.down_after_ms, replica_move_grace_s=300)
    times: list[float] = []
    try:
        asyncio.run(setup(cluster))
        sentinel = Sentinel(cluster.sentinels(), socket_timeout=0.5)
        for run in range(1, args.runs + 1):
            wait_replica_known(cluster)
            took = one_run(cluster, sentinel)
            times.append(took)
            print(f"run {run:2d}: first successful write {took:.2f} s after the kill", flush=True)
    finally:
        cluster.stop()
    print(f"failover (Sentinel down-after {args.down_after_ms} ms, 3 nodes, {len(times)} runs): "
          f"median {statistics.median(times):.2f} s, p95 {percentile(times, 95):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s (target: median <= 5 s)")


if __name__ == "__main__":
    main()
