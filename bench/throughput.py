"""GET/SET throughput of a database port against a plain redis-server with the same settings,
started in the same run on the same machine, measured with redis-benchmark.

    .venv/bin/python bench/throughput.py [--requests 100000] [--clients 50] [--rounds 9] [--tls]

The database is a shard of a 3-node loopback cluster (no proxy in the data path); the baseline is a
redis-server started from the same rendered configuration on another loopback address. Rounds
alternate between the two so load from other work on the machine hits both alike. Prints requests
per second (median of the rounds) and the ratio database / baseline. Target: at least 0.95.

With --tls a second database of the same cluster has `tls_mode: enabled`; redis-benchmark reaches it
with --tls, verifying it against the CA the REST API publishes, in the same rounds, and the ratio TLS
database / plaintext database is printed (the cost of TLS on the same path; no target).
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
from typing import Any

import redis

from recluster.node.config import NodeConfig
from recluster.node.devcluster import LoopbackCluster
from recluster.node.processes import ManagedProcess, write_private
from recluster.node.records import BdbRecord, ShardRecord
from recluster.node.shards import render_config, runtime_settings

BENCH = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SPEC = {"name": "bench-throughput", "memory_size": 256 * 1024 * 1024, "eviction_policy": "allkeys-lru"}


def server_cpu(host: str, port: int, ca: Path | None = None) -> float:
    tls = {"ssl": True, "ssl_ca_certs": str(ca), "ssl_check_hostname": False} if ca else {}
    info = redis.Redis(host=host, port=port, socket_timeout=5, **tls).info("cpu")  # type: ignore[arg-type]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def benchmark(host: str, port: int, requests: int, clients: int, test: str,
              ca: Path | None = None) -> dict[str, float]:
    """{TEST: requests/s, TEST-cpu-us: server CPU microseconds per request} for one redis-benchmark run
    (over TLS, verified against `ca`, when given)."""
    cpu_before = server_cpu(host, port, ca)
    tls = ["--tls", "--cacert", str(ca)] if ca else []
    out = subprocess.run([BENCH, "-h", host, "-p", str(port), *tls, "-t", test, "-n", str(requests),
                          "-c", str(clients), "-r", "100000", "--csv", "-q"],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    cpu_us = (server_cpu(host, port, ca) - cpu_before) * 1e6 / requests
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


async def create_dbs(cluster: LoopbackCluster,
                     tls: bool) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """The plaintext database, the TLS one (with --tls) and the CA that verifies it."""
    await cluster.start(timeout_s=180)
    await cluster.wait_ready(timeout_s=120)
    async with cluster.api(0) as api:
        plain = await api.wait_bdb_status(int((await api.create_bdb(SPEC))["uid"]), timeout_s=120)
        if not tls:
            return plain, None, ""
        secure = await api.create_bdb({**SPEC, "name": "bench-throughput-tls", "tls_mode": "enabled"})
        secure = await api.wait_bdb_status(int(secure["uid"]), timeout_s=120)
        return plain, secure, str((await api.certificates())["proxy_cert"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tls", action="store_true",
                        help="also a TLS database, compared with the plaintext one")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="recluster-bench-throughput-"))
    cluster = LoopbackCluster(3, root)
    baseline: ManagedProcess | None = None
    results: dict[str, dict[str, list[float]]] = {"database": {}, "baseline": {}}
    if args.tls:
        results["database-tls"] = {}
    try:
        view, secure, ca_pem = asyncio.run(create_dbs(cluster, args.tls))
        endpoint = view["endpoints"][0]
        host, port = endpoint["dns_name"], int(endpoint["port"])
        ports = {"database": port, "baseline": port}
        ca = root / "ca.pem"
        if secure is not None:
            ca.write_text(ca_pem)
            ports["database-tls"] = int(secure["endpoints"][0]["port"])
        bdb = BdbRecord(uid=0, name="baseline", memory_size=SPEC["memory_size"], port=port,  # type: ignore[arg-type]
                        replication=False, data_persistence="disabled", aof_policy="appendfsync-every-sec",
                        snapshot_policy=[], eviction_policy="allkeys-lru")
        baseline_addr = f"{cluster.base}{cluster.first_host + 50}"
        baseline = start_baseline(root, baseline_addr, bdb)
        targets = {"database": host, "baseline": baseline_addr}
        if secure is not None:
            targets["database-tls"] = str(secure["endpoints"][0]["dns_name"])
        for round_ in range(args.rounds):
            # alternate who goes first, so a load change on the machine hits all alike
            order = list(results) if round_ % 2 == 0 else list(reversed(list(results)))
            for test in ("set", "get"):
                for label in order:
                    for name, rps in benchmark(targets[label], ports[label], args.requests, args.clients,
                                               test, ca if label == "database-tls" else None).items():
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
        if "database-tls" in results:
            secure_rps = results["database-tls"][test]
            tls_ratios = [s / d for s, d in zip(secure_rps, db, strict=True)]
            print(f"{test}: TLS database {statistics.median(secure_rps):.0f} req/s, plaintext database "
                  f"{statistics.median(db):.0f} req/s, ratio TLS / plaintext "
                  f"{statistics.median(tls_ratios):.3f} (median of {args.rounds} paired rounds; same "
                  "cluster, same path; redis-benchmark verifies the server against the published CA)")


if __name__ == "__main__":
    main()
