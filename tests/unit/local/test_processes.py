"""Processes are stopped by the record of what we started, children included, and nothing else."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from recluster.local import processes

pytestmark = pytest.mark.unit


def test_stop_ends_the_process_and_its_children(tmp_path: Path) -> None:
    record = processes.start(
        "sleeper", ["sh", "-c", "sleep 300 & sleep 300 & wait"], run_dir=tmp_path, log_dir=tmp_path
    )
    deadline = time.monotonic() + 5
    while len(processes.session_members(record)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    members = processes.session_members(record)
    assert len(members) == 3
    assert [r.name for r in processes.running(tmp_path)] == ["sleeper"]
    assert processes.stop("sleeper", tmp_path, timeout=5) is True
    assert not [
        pid
        for pid in members
        if Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    ]
    assert not (tmp_path / "sleeper.pid").exists()
    assert processes.stop("sleeper", tmp_path) is False


def test_a_stale_record_never_signals_another_process(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        # a record with the bystander's pid but another start time: a reused pid, not ours
        ticks = processes.ProcessRecord("x", bystander.pid, 0)
        (tmp_path / "stale.pid").write_text(f"{bystander.pid} {ticks.start_ticks}\n")
        assert processes.stop("stale", tmp_path) is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
