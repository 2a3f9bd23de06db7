"""The private containerd's config: valid TOML, and everything it writes under its own dirs."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from recluster.local.containerd import CRI_PLUGIN, containerd_config

pytestmark = pytest.mark.unit

ROOT, STATE, SOCK = Path("/srv/n1/root"), Path("/run/n1/state"), Path("/run/n1/containerd.sock")


def parse(**kwargs: Any) -> dict[str, Any]:
    return tomllib.loads(containerd_config(ROOT, STATE, SOCK, **kwargs))


def test_own_root_state_and_sockets() -> None:
    cfg = parse()
    assert cfg["version"] == 2
    assert cfg["root"] == str(ROOT)
    assert cfg["state"] == str(STATE)
    assert cfg["grpc"]["address"] == str(SOCK)
    assert cfg["ttrpc"]["address"] == f"{SOCK}.ttrpc"
    assert cfg["debug"]["address"] == ""
    assert cfg["metrics"]["address"] == ""
    # the opt dir is normally the shared /opt/containerd
    assert cfg["plugins"]["io.containerd.internal.v1.opt"]["path"] == str(ROOT / "opt")


def test_cri_for_a_kubelet_runc_cgroupfs_cni() -> None:
    cfg = parse(cni_conf_dir=Path("/srv/n1/cni"), snapshotter="native", pause_image="example/pause:1")
    cri = cfg["plugins"][CRI_PLUGIN]
    assert CRI_PLUGIN not in cfg["disabled_plugins"]
    assert cri["sandbox_image"] == "example/pause:1"
    assert cri["containerd"]["snapshotter"] == "native"
    assert cri["containerd"]["default_runtime_name"] == "runc"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {
        "BinaryName": "/usr/sbin/runc",
        "Root": str(STATE / "runc"),  # never the shared /run/containerd/runc
        "SystemdCgroup": False,
    }
    # pod network namespaces under this instance's state, not the machine-wide /var/run/netns
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert cri["cni"]["conf_dir"] == "/srv/n1/cni"


def test_cni_conf_dir_defaults_to_one_of_its_own() -> None:
    assert parse()["plugins"][CRI_PLUGIN]["cni"]["conf_dir"] == str(ROOT / "cni" / "net.d")


def test_without_cri_the_plugin_is_disabled_and_unconfigured() -> None:
    cfg = parse(cri=False)
    assert CRI_PLUGIN in cfg["disabled_plugins"]
    assert CRI_PLUGIN not in cfg["plugins"]


def test_unusable_snapshotters_disabled_and_extra_plugins_added_once() -> None:
    extra = "io.containerd.snapshotter.v1.zfs"
    disabled = parse(disabled_plugins=[extra, "io.containerd.tracing.processor.v1.otlp"])["disabled_plugins"]
    assert "io.containerd.snapshotter.v1.btrfs" in disabled
    assert "io.containerd.tracing.processor.v1.otlp" in disabled
    assert disabled.count(extra) == 1


def test_paths_are_quoted() -> None:
    odd = Path('/tmp/a dir/with "quotes" and \\ backslash')
    cfg = tomllib.loads(containerd_config(odd / "root", odd / "state", odd / "sock"))
    assert cfg["root"] == str(odd / "root")
    assert cfg["plugins"][CRI_PLUGIN]["containerd"]["runtimes"]["runc"]["options"]["Root"] == str(
        odd / "state" / "runc"
    )


def test_pure() -> None:
    assert containerd_config(ROOT, STATE, SOCK) == containerd_config(ROOT, STATE, SOCK)


def test_mountinfo_escapes() -> None:
    from recluster.local.containerd import _unescape

    assert _unescape(r"/tmp/a\040dir/x\134y\011z") == "/tmp/a dir/x\\y\tz"
    assert _unescape("/plain/path") == "/plain/path"
    assert _unescape("/ends/with\\04") == "/ends/with\\04"
