"""`recluster dev-cluster` starts a loopback cluster in the foreground, prints how to reach it, and
stops every process on Ctrl-C."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from recluster.node.devcluster import kill_leftovers
from recluster.node.processes import alive

pytestmark = pytest.mark.integration


def test_dev_cluster_prints_how_to_reach_it_and_stops_everything(tmp_path: Path) -> None:
    base = f"127.{random.randint(20, 250)}.{random.randint(1, 250)}."
    command = [sys.executable, "-m", "recluster.cli", "dev-cluster", "--nodes", "1", "--base", base,
               "--root", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while not any("Ctrl-C stops" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())
        text = "".join(lines)
        assert f"https://{base}11:9443" in text and f"{base}11:8001" in text
        username, password = (tmp_path / "credentials").read_text().split()
        response = httpx.get(f"https://{base}11:9443/v1/nodes", auth=(username, password),
                             verify=False)  # noqa: S501
        assert response.status_code == 200 and len(response.json()) == 1
        pid_files = list(tmp_path.glob("node-0/**/*.pid"))
        assert pid_files
        pids = [int(p.read_text()) for p in pid_files]
        process.send_signal(signal.SIGINT)
        process.wait(60)
        assert "stopped" in process.stdout.read()
        assert not [pid for pid in pids if alive(pid)], "dev-cluster left processes behind"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        kill_leftovers(tmp_path)
