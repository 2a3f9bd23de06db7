"""`recluster local up | status | kubeconfig | down` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recluster.local.cluster import LocalCluster
from recluster.local.network import link_exists

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its (re)parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def recluster(*args: str, state_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECLUSTER_LOCAL_STATE": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "recluster.cli", "local", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_up_down_up_keeps_objects_and_leaves_nothing_running(kube_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = recluster("up", "--name", "rccli", "--nodes", "0", state_dir=state)
    try:
        assert started.returncode == 0, started.stderr
        config = recluster("kubeconfig", state_dir=state).stdout.strip()
        kubectl = [str(kube_dir / "kubectl"), "--kubeconfig", config]
        readyz = subprocess.run(
            [*kubectl, "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=30, check=True
        )
        assert readyz.stdout.strip() == "ok"
        subprocess.run(
            [*kubectl, "create", "configmap", "kept", "--from-literal=a=b"],
            check=True,
            capture_output=True,
            timeout=30,
        )

        status = json.loads(recluster("status", "--json", state_dir=state).stdout)
        pids = [proc["pid"] for proc in status["processes"].values()]
        assert status["ready"] is True and all(pids) and len(pids) == 4
        again = recluster("up", "--name", "rccli", "--nodes", "0", state_dir=state)
        assert again.returncode == 0 and "already running" in again.stderr
        cluster = LocalCluster.load(state)
        assert cluster is not None

        stopped = recluster("down", state_dir=state)
        assert stopped.returncode == 0, stopped.stderr
        assert not [pid for pid in pids if alive(pid)]
        assert not link_exists(cluster.layout.bridge)
        routes = subprocess.run(
            ["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True, check=True
        ).stdout
        assert f"metric {cluster.layout.unreachable_metric}" not in routes

        assert recluster("up", "--name", "rccli", "--nodes", "0", state_dir=state).returncode == 0
        kept = subprocess.run(
            [*kubectl, "get", "configmap", "kept", "-o", "jsonpath={.data.a}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert kept.stdout == "b"
    finally:
        recluster("down", state_dir=state)
