"""Backup and restore throughput of a database of --size-mib (1024) against `redis-cli --rdb` of the
same data to a local file, in the same run.

    .venv/bin/python bench/backup.py [--size-mib 1024] [--runs 3]

On this machine, on 127.0.0.1: a redis-server (the shard) filled with DEBUG POPULATE (1 KiB values,
`rdbcompression no`, so the RDB is about the data's size; `repl-diskless-sync-delay 0`, so that
redis-cli's diskless sync does not wait 5 s), the S3 server of tools/s3 (built from its
Go module, data on disk), and an empty redis-server to restore into. Per run:
  redis-cli --rdb   the baseline: the RDB over the replication protocol into a local file
  backup            node/backup.export_database: the same snapshot, hashed, uploaded to S3 with its
                    manifest (what POST /v1/bdbs/<uid>/actions/export runs)
  restore           node/backup.import_database: download, checks (size, sha256, a temporary
                    redis-server loads it), FLUSHALL and DUMP/RESTORE of every key
Prints MB/s (RDB bytes / seconds, MB = 10^6 bytes) per run, the median, and backup / redis-cli and
restore / redis-cli ratios of the medians."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from rich.console import Console

from recluster.api.backup import S3Destination
from recluster.local.s3server import ensure_s3_server, start_s3_server, stop_s3_server
from recluster.node.backup import ShardAddress, export_database, import_database

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
PASSWORD = "bench-password"
VALUE_SIZE = 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    directory.mkdir(parents=True)
    port = free_port()
    config = directory / "redis.conf"
    config.write_text("\n".join([
        "bind 127.0.0.1", f"port {port}", f"dir {directory}", 'save ""', "appendonly no",
        # no 5 s wait before a diskless sync (redis-cli --rdb asks for one), no compression
        "repl-diskless-sync-delay 0", "rdbcompression no", "enable-debug-command local",
        f"requirepass {PASSWORD}", "",
    ]))
    config.chmod(0o600)
    process = subprocess.Popen([REDIS_SERVER, str(config)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD)
    deadline = time.monotonic() + 20
    while True:  # waits for the server to answer PING
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server in {directory} did not answer within 20 s") from None
            time.sleep(0.05)


def megabytes_per_second(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    console = Console(stderr=True)
    root = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        binary = ensure_s3_server(console)
        _, endpoint = start_s3_server(binary, root / "s3")
        source, source_port = start_redis(root / "source")
        target, target_port = start_redis(root / "target")
        processes += [source, target]
        keys = args.size_mib * (1 << 20) // VALUE_SIZE
        began = time.monotonic()
        redis.Redis(port=source_port, password=PASSWORD).execute_command("DEBUG", "POPULATE", keys, "key",
                                                                         VALUE_SIZE)
        console.print(f"{keys:,} keys of {VALUE_SIZE} B written in {time.monotonic() - began:.1f}s")
        destination = S3Destination(endpoint.bucket, endpoint.access_key_id, endpoint.secret_access_key,
                                    "bench", endpoint.region, endpoint.url)
        address = ShardAddress("127.0.0.1", source_port, None, PASSWORD)
        target_address = ShardAddress("127.0.0.1", target_port, None, PASSWORD)
        rows: dict[str, list[float]] = {"redis-cli --rdb": [], "backup (export to S3)": [],
                                        "restore (import from S3)": []}
        size = 0
        for run in range(1, args.runs + 1):
            local = root / "cli.rdb"
            began = time.monotonic()
            await asyncio.to_thread(
                subprocess.run, [REDIS_CLI, "-p", str(source_port), "--no-auth-warning", "--rdb", str(local)],
                env={**os.environ, "REDISCLI_AUTH": PASSWORD}, check=True, timeout=1800,
                stdout=subprocess.DEVNULL)
            cli_seconds = time.monotonic() - began
            size = local.stat().st_size
            local.unlink()
            rows["redis-cli --rdb"].append(megabytes_per_second(size, cli_seconds))

            began = time.monotonic()
            directory, manifest = await export_database(
                bdb_uid=1, bdb_name="bench", engine_version="7.0", source=address, destination=destination,
                work_dir=root / "work")
            rows["backup (export to S3)"].append(megabytes_per_second(manifest.total_size,
                                                                      time.monotonic() - began))
            began = time.monotonic()
            result = await import_database(filename=f"{directory}manifest.json", source=destination,
                                           engine_version="7.0", redis_server=REDIS_SERVER,
                                           target=target_address, work_dir=root / "work")
            rows["restore (import from S3)"].append(megabytes_per_second(result.bytes,
                                                                         time.monotonic() - began))
            assert result.keys == keys, f"restored {result.keys} keys of {keys}"
            console.print(f"run {run}: " + ", ".join(f"{name} {values[-1]:.0f} MB/s"
                                                     for name, values in rows.items()))
        baseline = statistics.median(rows["redis-cli --rdb"])
        print(f"RDB of {size / 1e6:,.0f} MB ({keys:,} keys), {args.runs} runs, median MB/s:")
        for name, values in rows.items():
            median = statistics.median(values)
            print(f"  {name:26} {median:8.1f} MB/s   ratio to redis-cli --rdb {median / baseline:.2f}   "
                  f"(runs: {', '.join(f'{v:.0f}' for v in values)})")
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        stop_s3_server(root / "s3")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
