"""The bdb view reports the engine the shards really run (redis-server's major.minor), not a
hard-coded one, and that the default user is on (the shards never turn it off)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recluster.node.models import BdbRecord, ClusterRecord, ClusterState
from recluster.node.views import bdb_view, engine_version

pytestmark = pytest.mark.unit


def _fake_server(tmp_path: Path, banner: str) -> str:
    script = tmp_path / "redis-server"
    script.write_text(f"#!/bin/sh\necho '{banner}'\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("banner", "version"),
    [
        ("Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1", "7.2"),
        ("Redis server v=7.0.15 sha=00000000:0 malloc=libc bits=64 build=ae4d7c971a948f0", "7.0"),
        ("Redis server v=10.12.1 sha=0", "10.12"),
        ("something else", ""),
    ],
)
def test_engine_version_from_the_binary(tmp_path: Path, banner: str, version: str) -> None:
    assert engine_version(_fake_server(tmp_path, banner)) == version


def test_engine_version_without_a_binary(tmp_path: Path) -> None:
    assert engine_version(str(tmp_path / "missing")) == ""


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server here")
def test_engine_version_of_this_machine() -> None:
    assert engine_version(str(shutil.which("redis-server"))).count(".") == 1


def test_bdb_view_reports_the_engine_and_the_default_user() -> None:
    bdb = BdbRecord(
        uid=1, name="db", memory_size=100 << 20, port=12000, replication=False,
        data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
        eviction_policy="volatile-lru",
    )
    state = ClusterState(
        cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"), bdbs={1: bdb}
    )
    view = bdb_view(state, bdb, "7.4")
    assert view["version"] == "7.4" and view["default_user"] is True
