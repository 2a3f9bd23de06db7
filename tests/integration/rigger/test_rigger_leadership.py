"""Two `recluster rigger` processes against the local control plane, under the REC's own
ServiceAccount and the Role the operator builds: one holds the Lease `<rec>-services-rigger`, the
standby takes it over within seconds when the leader is killed (no hand-over), and a leader stopped
with SIGTERM hands it over at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recluster.api.rec import RedisEnterpriseCluster
from recluster.local.cluster import LocalCluster
from recluster.local.harness import REPO, eventually, kubectl, operator_kubeconfig, operator_namespace
from recluster.operator.specs.rbac import build_role, build_role_binding, build_service_account

pytestmark = pytest.mark.integration

REC = "rec"
LEASE = f"{REC}-services-rigger"
LEASE_SECONDS = 3


@pytest.fixture
def namespace(control_plane: LocalCluster) -> Iterator[str]:
    with operator_namespace(control_plane) as name:
        rec = RedisEnterpriseCluster.model_validate({  # apiVersion and kind: the model's defaults
            "metadata": {"name": REC, "namespace": name, "uid": "00000000-0000-0000-0000-000000000002"},
            "spec": {"nodes": 3},
        })
        for obj in (build_service_account(rec), build_role(rec), build_role_binding(rec)):
            obj["metadata"].pop("ownerReferences", None)  # no such REC here: the GC would delete them
            kubectl(control_plane, "apply", "-f", "-", input=json.dumps(obj))
        yield name


def start_rigger(
    cluster: LocalCluster, namespace: str, workdir: Path, identity: str
) -> subprocess.Popen[bytes]:
    credentials = workdir / "credentials"
    credentials.mkdir(exist_ok=True)
    (credentials / "username").write_text("admin@example.com")
    (credentials / "password").write_text("unused")
    (workdir / "ca.pem").write_text("")  # no node pods here: the REST API is never asked
    env = {
        **os.environ,
        "KUBECONFIG": str(operator_kubeconfig(cluster, namespace, workdir / f"kubeconfig-{identity}", REC)),
        "POD_NAMESPACE": namespace,
        "POD_NAME": identity,
        "RECLUSTER_RIGGER_CLUSTER": REC,
        "RECLUSTER_RIGGER_LEASE_NAME": LEASE,
        "RECLUSTER_RIGGER_LEASE_SECONDS": str(LEASE_SECONDS),
        "RECLUSTER_RIGGER_API_URL": f"https://{REC}.{namespace}.svc.cluster.local:9443",
        "RECLUSTER_RIGGER_CREDENTIALS_FILE": str(credentials),
        "RECLUSTER_RIGGER_CA_FILE": str(workdir / "ca.pem"),
    }
    with (workdir / f"rigger-{identity}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "recluster.cli", "rigger"], stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=REPO,
        )


def lease(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    result = kubectl(cluster, "-n", namespace, "get", "lease", LEASE, "-o", "json", check=False)
    return json.loads(result.stdout).get("spec") or {} if result.returncode == 0 else {}


def holder(cluster: LocalCluster, namespace: str) -> str | None:
    return lease(cluster, namespace).get("holderIdentity")


def test_standby_takes_over_a_killed_leader_and_a_stopped_one_hands_over(
    control_plane: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    first = start_rigger(control_plane, namespace, tmp_path, "rigger-a")
    second = None
    try:
        eventually("rigger-a leads", lambda: holder(control_plane, namespace) == "rigger-a", timeout=60)
        second = start_rigger(control_plane, namespace, tmp_path, "rigger-b")
        time.sleep(2 * LEASE_SECONDS)  # the standby is up and polling: it must not take a renewed Lease
        assert holder(control_plane, namespace) == "rigger-a"
        assert lease(control_plane, namespace)["leaseDurationSeconds"] == LEASE_SECONDS

        first.send_signal(signal.SIGKILL)  # a crash: no hand-over, the Lease must expire
        killed = time.monotonic()
        eventually("rigger-b takes over", lambda: holder(control_plane, namespace) == "rigger-b", timeout=30)
        took = time.monotonic() - killed
        # expiry plus one standby poll (a third of the Lease) plus kubectl's own latency
        assert took < LEASE_SECONDS * 2 + 3, f"the standby took {took:.1f} s"

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0, (tmp_path / "rigger-rigger-b.log").read_text()[-2000:]
        assert holder(control_plane, namespace) is None, "a stopped leader hands the Lease over"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
