"""The upgrade a running installation makes: the operator and REC of an older revision of this
repository (RECLUSTER_UPGRADE_FROM=<git revision>, e.g. the last image on Debian 12, ea8397b), then
this checkout's operator, which rolls the REC (it names no image, so it follows the operator) while a
replicated database created on the old image takes WAIT-confirmed writes. The database keeps its
engine (what the old image ran), a database created afterwards gets the new default, nothing confirmed
is lost.

Opt-in: it builds a second full image from the old revision (several minutes cold), which the whole
suite cannot afford on every run; `RECLUSTER_UPGRADE_FROM=ea8397b bin/test <this file>` runs it."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.local.support import IMAGE, apply
from tests.e2e.operator.test_operator_in_cluster import (
    check_writes,
    operator_deployment,
    rolled_to,
    running_operator,
    stop_writer,
    writing_to_new_database,
)

from recluster.local.cluster import LocalCluster
from recluster.local.harness import eventually, rec_manifest, redb_manifest, wait_active, wait_state
from recluster.local.images import IMAGE_NAME, ensure_project_image
from recluster.local.paths import cache_dir, repo_dir

REVISION = os.environ.get("RECLUSTER_UPGRADE_FROM", "")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not REVISION, reason="opt-in: set RECLUSTER_UPGRADE_FROM=<git revision> to build "
                       "that revision's image and upgrade from it (a second full image build)"),
]
DB = "from-old"


@pytest.fixture
def old_image(local_cluster: LocalCluster) -> Iterator[str]:
    """The old revision's image, built from a worktree of it and imported into every node."""
    repo = Path(repo_dir())
    with tempfile.TemporaryDirectory(prefix="recluster-old-") as parent:
        tree = Path(parent) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), REVISION],
                       check=True, capture_output=True, timeout=120)
        try:
            label = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short=12", "HEAD"], check=True,
                                   capture_output=True, text=True, timeout=30).stdout.strip()
            tag = f"{IMAGE_NAME}:old-{label}"
            local_cluster.load_image(ensure_project_image(tree, cache_dir(), tag, version=f"old-{label}"))
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True, timeout=120)
        yield tag


@pytest.mark.timeout(2400)
def test_an_older_revisions_operator_and_rec_upgrade_to_this_one_keeping_writes(
    local_cluster: LocalCluster, namespace: str, old_image: str
) -> None:
    apply(local_cluster, namespace, operator_deployment(old_image))
    running_operator(local_cluster, namespace, old_image)
    apply(local_cluster, namespace, rec_manifest())
    wait_state(local_cluster, namespace, "Running", timeout=420)
    writer, old_version = writing_to_new_database(local_cluster, namespace, DB)
    try:
        writer.mark("operator upgraded, REC following")
        apply(local_cluster, namespace, operator_deployment(IMAGE))
        running_operator(local_cluster, namespace, IMAGE)
        started = time.monotonic()
        eventually("every node pod and the rigger on this checkout's image, the REC Running",
                   lambda: rolled_to(local_cluster, namespace, IMAGE), timeout=900, interval=3)
        rolled_in = time.monotonic() - started
        status = wait_active(local_cluster, namespace, DB, timeout=120)
        assert status.get("version") == old_version, "the database changed engine in the roll"
        apply(local_cluster, namespace, redb_manifest("after-roll", replication=True))
        new_version = wait_active(local_cluster, namespace, "after-roll", timeout=180).get("version")
        writer.mark("after the roll")
        confirmed = len(writer.confirmed)
        eventually("writes after the roll", lambda: len(writer.confirmed) > confirmed + 10, timeout=60)
    finally:
        stop_writer(writer)
    check_writes(writer, f"upgrade from {REVISION}: rolled in {rolled_in:.0f} s; {DB} stays on "
                 f"{old_version}, a new database gets {new_version}")
