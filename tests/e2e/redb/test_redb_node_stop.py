"""The master's node stopped (kubelet, containerd and every container on it killed): a *new* master
(another run_id, role master) takes writes through the same `<db>` Service address, every write WAIT
confirmed before is read back from it, and the master label and the Service's endpoints follow it.
Runs after the other REDB tests (file order): the stopped node's pod is not this test's subject and
may take long to rejoin."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
from tests.e2e.local.support import node_ready
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.test_redb_failover import Database, replicated_db

from recluster.local.harness import eventually

pytestmark = pytest.mark.e2e

__all__ = ["replicated_db"]


def test_master_node_stopped(redb_env: RedbEnv, replicated_db: Callable[[str], Database]) -> None:
    cluster = redb_env.cluster
    db = replicated_db("fo2")
    old = db.write_confirmed(50)
    master = db.master_pod()
    assert master["status"]["podIP"] == old.addr
    node = master["spec"]["nodeName"]
    started = time.monotonic()
    cluster.stop_node(node)
    try:
        db.check_after_failover(old, started, timeout=180)
    finally:
        with contextlib.suppress(Exception):
            cluster.start_node(node)
    # The node is back, its pod with a new IP: the database is whole again, two shards and the
    # master's replica linked (a replica left following the pod's old address never was).
    eventually(f"node {node} Ready", lambda: node_ready(cluster, node), timeout=180)
    eventually("the database whole: two shards, the replica linked to the master", db.whole, timeout=240)
