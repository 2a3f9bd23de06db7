"""GET/SET throughput of a database port against a plain redis-server with the same settings,
started in the same run on the same machine, measured with redis-benchmark.

    .venv/bin/python bench/throughput.py [--requests 100000] [--clients 50] [--rounds 9]

The database is a shard of a 3-node loopback cluster (no proxy in the data path); the baseline is a
redis-server started from the same rendered configuration on another loopback address. Rounds
alternate between the two so load from other work on the machine hits both alike. Prints requests
per second (median of the rounds) and the ratio database / baseline. Target: at least 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from recluster.node.config import NodeConfig
from recluster.node.devcluster import LoopbackCluster
from recluster.node.models import BdbRecord, ShardRecord
from recluster.node.processes import ManagedProcess, write_private
from recluster.node.shards import render_config, runtime_settings

BENCH = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SPEC = {"name": "bench-throughput", "memory_size": 256 * 1024 * 1024, "eviction_policy": "allkeys-lru"}


def server_cpu(host: str, port: int) -> float:
    info = redis.Redis(host=host, port=port, socket_timeout=5).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def benchmark(host: str, port: int, requests: int, clients: int, test: str) -> dict[str, float]:
    """{TEST: requests/s, TEST-cpu-us: server CPU microseconds per request} for one redis-benchmark run."""
    cpu_before = server_cpu(host, port)
    out = subprocess.run([BENCH, "-h", host, "-p", str(port), "-t", test, "-n", str(requests),
                          "-c", str(clients), "-r", "100000", "--csv", "-q"],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    cpu_us = (server_cpu(host, port) - cpu_before) * 1e6 / requests
    rows = list(csv.reader(io.StringIO(out)))
    result = {row[0]: float(row[1]) for row in rows[1:] if len(row) > 1}
    result.update({f"{name}-cpu-us": cpu_us for name in list(result)})
    return result


def start_baseline(root: Path, addr: str, bdb: BdbRecord) -> ManagedProcess:
    """A plain redis-server from the configuration the shard supervisor renders for the database."""
    shard_dir = root / "baseline"
    shard_dir.mkdir(parents=True, exist_ok=True)
    cfg = NodeConfig(addr=addr, data_dir=root)
    settings = runtime_settings(bdb, ShardRecord(uid=0, bdb_uid=bdb.uid, node_uid=0, role="master"))
    conf = shard_dir / "redis.conf"
    write_private(conf, render_config(cfg, shard_dir, bdb, settings, None))
    process = ManagedProcess("baseline", ["/usr/bin/redis-server", str(conf)], shard_dir / "redis.pid",
                             str(conf), shard_dir / "redis.log")
    process.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(host=addr, port=bdb.port, socket_timeout=1).ping()
            return process
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def create_db(cluster: LoopbackCluster) -> dict[str, object]:
    await cluster.start(timeout_s=180)
    await cluster.wait_ready(timeout_s=120)
    async with cluster.api(0) as api:
        bdb = await api.create_bdb(SPEC)
        return await api.wait_bdb_status(int(bdb["uid"]), timeout_s=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="recluster-bench-throughput-"))
    cluster = LoopbackCluster(3, root)
    baseline: ManagedProcess | None = None
    results: dict[str, dict[str, list[float]]] = {"database": {}, "baseline": {}}
    try:
        view = asyncio.run(create_db(cluster))
        endpoint = view["endpoints"][0]  # type: ignore[index]
        host, port = endpoint["dns_name"], int(endpoint["port"])
        bdb = BdbRecord(uid=0, name="baseline", memory_size=SPEC["memory_size"], port=port,  # type: ignore[arg-type]
                        replication=False, data_persistence="disabled", aof_policy="appendfsync-every-sec",
                        snapshot_policy=[], eviction_policy="allkeys-lru")
        baseline_addr = f"{cluster.base}{cluster.first_host + 50}"
        baseline = start_baseline(root, baseline_addr, bdb)
        targets = {"database": host, "baseline": baseline_addr}
        for round_ in range(args.rounds):
            # alternate who goes first, so a load change on the machine hits both alike
            order = ["database", "baseline"] if round_ % 2 == 0 else ["baseline", "database"]
            for test in ("set", "get"):
                for label in order:
                    for name, rps in benchmark(targets[label], port, args.requests, args.clients,
                                               test).items():
                        results[label].setdefault(name, []).append(rps)
            print(f"round {round_ + 1}: " + ", ".join(
                f"{label} {test} {values[-1]:.0f}/s" for label in results
                for test, values in results[label].items() if not test.endswith("-cpu-us")), flush=True)
    finally:
        if baseline is not None:
            baseline.stop()
        cluster.stop()
    for test in sorted(t for t in results["database"] if not t.endswith("-cpu-us")):
        db_cpu = statistics.median(results["database"][f"{test}-cpu-us"])
        base_cpu = statistics.median(results["baseline"][f"{test}-cpu-us"])
        print(f"{test} server CPU per request: database {db_cpu:.2f} us, "
              f"plain redis-server {base_cpu:.2f} us, "
              f"efficiency ratio {base_cpu / db_cpu:.3f} (load-independent cross-check)")
        db, base = results["database"][test], results["baseline"][test]
        ratios = [d / b for d, b in zip(db, base, strict=True)]
        print(f"{test}: database {statistics.median(db):.0f} req/s, plain redis-server "
              f"{statistics.median(base):.0f} req/s, ratio {statistics.median(ratios):.3f} (median of "
              f"{args.rounds} paired rounds, {args.requests} requests, {args.clients} clients; "
              "target >= 0.95)")


if __name__ == "__main__":
    main()
