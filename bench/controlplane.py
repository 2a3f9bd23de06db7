"""Control-plane figures: the Kubernetes build (cold only when the cache is empty), a warm
`local up` to /readyz, and the resident memory of each component once up.

    .venv/bin/python bench/controlplane.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from recluster.local import processes
from recluster.local.cluster import LocalCluster
from recluster.local.kubebuild import binary_dir, ensure_kube


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    console = Console(stderr=True)
    cached = (binary_dir() / "kube").exists()
    started = time.monotonic()
    ensure_kube(console)
    build = time.monotonic() - started
    print(f"kubernetes build: {build:.1f}s ({'warm: cache hit' if cached else 'cold'})")

    state = Path(tempfile.mkdtemp(prefix="rc-bench-"))
    cluster = LocalCluster.create(state, name="rcbench", fsync=False)
    try:
        for attempt in ("first (new state)", "second (after down, same state)"):
            started = time.monotonic()
            cluster.up(Console(stderr=True, quiet=True))
            print(f"local up to /readyz, {attempt}: {time.monotonic() - started:.1f}s")
            time.sleep(5)
            total = 0.0
            for record in processes.running(cluster.paths.run):
                mib = sum(rss_mib(pid) for pid in processes.session_members(record))
                total += mib
                print(f"  {record.name:<26} {mib:7.1f} MiB")
            print(f"  {'control plane total':<26} {total:7.1f} MiB")
            cluster.down(Console(stderr=True, quiet=True))
    finally:
        cluster.down(Console(stderr=True, quiet=True))
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
