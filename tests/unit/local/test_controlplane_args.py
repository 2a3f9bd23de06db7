"""The control plane's command lines: what the issue requires of them, and no secret in argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from recluster.local import controlplane
from recluster.local.controlplane import ControlPlanePaths
from recluster.local.layout import Layout

pytestmark = pytest.mark.unit


@pytest.fixture
def creds(tmp_path: Path) -> controlplane.Credentials:
    return controlplane.issue_credentials(Layout("c", 3), ControlPlanePaths(tmp_path))


def flags(argv: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in argv[1:] if "=" in arg)


def test_apiserver_binds_and_advertises_the_bridge_address_with_rbac(tmp_path: Path, creds) -> None:  # type: ignore[no-untyped-def]
    layout = Layout("c", 3)
    args = flags(controlplane.apiserver_args(layout, ControlPlanePaths(tmp_path), creds))
    assert args["bind-address"] == args["advertise-address"] == "198.18.48.1"
    assert args["authorization-mode"] == "Node,RBAC"
    assert args["service-cluster-ip-range"] == "198.19.48.0/20"
    assert args["etcd-servers"] == "http://127.18.48.1:2379"
    assert "NodeRestriction" in args["enable-admission-plugins"]
    assert "disable-admission-plugins" not in args  # ServiceAccount admission stays on


def test_component_ports_are_private_to_the_cluster(tmp_path: Path, creds) -> None:  # type: ignore[no-untyped-def]
    layout, paths = Layout("c", 3), ControlPlanePaths(tmp_path)
    for argv in (
        controlplane.controller_manager_args(layout, paths, creds),
        controlplane.scheduler_args(layout, paths),
    ):
        assert flags(argv)["bind-address"] == layout.loopback
    kcm = flags(controlplane.controller_manager_args(layout, paths, creds))
    assert kcm["controllers"] == "*" and kcm["cluster-cidr"] == str(layout.pod_cidr)
    etcd = flags(controlplane.etcd_args(layout, paths))
    assert etcd["listen-client-urls"].startswith(f"http://{layout.loopback}:")


def test_keys_are_private_files_not_arguments(tmp_path: Path, creds) -> None:  # type: ignore[no-untyped-def]
    for pair in (creds.ca, creds.apiserver, creds.admin, creds.service_account):
        assert pair.key.stat().st_mode & 0o777 == 0o600
        assert b"PRIVATE KEY" in pair.key.read_bytes()
    argv = controlplane.apiserver_args(Layout("c", 3), ControlPlanePaths(tmp_path), creds)
    assert not any("PRIVATE KEY" in arg for arg in argv)
