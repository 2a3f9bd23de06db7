"""Failover time of a replicated database: from the SIGKILL of the master's node (daemon and shards)
to the first write a *new* master takes through Sentinel discovery (port 8001), over several runs.

    .venv/bin/python bench/failover.py [--runs 10] [--down-after-ms 2000]

Each run: wait until the replica is in sync and every sentinel knows it, write 50 keys confirmed by
`WAIT 1`, note the master's run_id, kill the master's node, write through redis-py's Sentinel client
(every 50 ms) until a server with another run_id that says it is master takes a write (each write in one
MULTI/EXEC with `INFO server` and ROLE: recluster.clients.write_probe), read the confirmed keys back
from that master, then restart the node and wait until it is ready again. A write the old master takes
(its shards die a moment after its daemon) does not end the failover; the first successful write at all
is printed beside. Prints every run, the median and the p95. Target: median at most 5 s.
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

from recluster.clients.write_probe import FailoverWrites, identify, read_back, take, write_confirmed
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


def one_run(cluster: LoopbackCluster, sentinel: Sentinel, run: int) -> tuple[FailoverWrites, int, int]:
    """The writes after the kill, the WAIT-confirmed keys lost on the new master, and how many."""
    host, port = sentinel.discover_master(DB)
    victim = next(n.index for n in cluster.nodes if n.addr == host)
    keys = [f"confirmed-{run}-{n}" for n in range(50)]
    old, confirmed = write_confirmed(host, port, None, keys)
    if old is None or old.role != "master" or len(confirmed) < len(keys):
        raise RuntimeError(f"{len(confirmed)} of {len(keys)} writes confirmed on {host}:{port} ({old})")
    # no client-side retry/backoff: the loop below retries every 50 ms, so the figure is the cluster's
    # (redis-py's default client retry backs off exponentially with jitter, which would add up to
    # seconds of client-side waiting to the figure)
    client = sentinel.master_for(DB, socket_timeout=0.5, socket_connect_timeout=0.5)
    client.set_retry(Retry(NoBackoff(), 0))
    if identify(client).run_id != old.run_id:
        raise RuntimeError("the Sentinel client reaches another server than the confirmed writes")
    killed_at = time.monotonic()
    cluster.kill_node(victim)
    writes = FailoverWrites(old, killed_at)
    last_error = ""
    n = 0
    while writes.first_new is None:
        try:
            writes.add(take(client, f"after-{run}-{n}", "1"))
        except redis.RedisError as exc:
            writes.add(None)
            error = f"{type(exc).__name__}: {str(exc)[:80]}"
            if error != last_error and VERBOSE:
                print(f"  {time.monotonic() - killed_at:5.2f} s: {error}", flush=True)
            last_error = error
        n += 1
        if writes.first_new is None and time.monotonic() - killed_at > 120:
            raise TimeoutError(f"no write on a new master 120 s after the kill: {writes.summary()}")
        time.sleep(0.05)
    client.close()
    new_host, new_port = sentinel.discover_master(DB)
    got = read_back(new_host, new_port, None, confirmed)
    if got is None or got[0].run_id == old.run_id:
        raise RuntimeError(f"could not read the confirmed writes on the new master {new_host}:{new_port}")
    cluster.start_node(victim)
    asyncio.run(cluster.wait_ready([victim], timeout_s=120))
    return writes, len(got[1]), len(confirmed)


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
    results: list[FailoverWrites] = []
    lost = confirmed = 0
    try:
        asyncio.run(setup(cluster))
        sentinel = Sentinel(cluster.sentinels(), socket_timeout=0.5)
        for run in range(1, args.runs + 1):
            wait_replica_known(cluster)
            writes, lost_now, confirmed_now = one_run(cluster, sentinel, run)
            results.append(writes)
            lost, confirmed = lost + lost_now, confirmed + confirmed_now
            print(f"run {run:2d}: {writes.summary()}; WAIT-confirmed lost {lost_now}/{confirmed_now}",
                  flush=True)
    finally:
        cluster.stop()
    print(f"failover (Sentinel down-after {args.down_after_ms} ms, 3 nodes, {len(results)} runs):")
    for label, values in (
        ("kill -> first write on the new master", [w.since(w.first_new) for w in results]),
        ("kill -> first successful write, any server", [w.since(w.first_any) for w in results]),
        ("longest time without a successful write", [w.longest_gap for w in results]),
    ):
        got = [v for v in values if v is not None]
        if got:
            print(f"  {label}: median {statistics.median(got):.2f} s, p95 {percentile(got, 95):.2f} s, "
                  f"min {min(got):.2f} s, max {max(got):.2f} s")
    print(f"  writes taken by the killed master after the kill: {sum(len(w.old_writes) for w in results)}")
    print(f"  WAIT-confirmed writes lost: {lost}/{confirmed}")
    print("  target: median <= 5 s (first write on the new master)")

if __name__ == "__main__":
    main()
