"""The REDB reconcile end to end against fakes (Kubernetes and the cluster's REST API): create,
in line, settled (the cheap resync asks only for the database and its shards), drift undone by the
full pass, deletion releasing the contract finalizer."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.operator.fakes import FakeKube

from recluster.api import check_rec
from recluster.api.redb import FINALIZER
from recluster.clients.cluster_api import ClusterApiError
from recluster.operator.context import Context
from recluster.operator.redb import delete as redb_delete
from recluster.operator.redb import reconcile as redb_reconcile
from recluster.operator.redb import settled_check
from recluster.operator.redb.reconcile import BUSY_SECONDS, reconcile_redb
from recluster.operator.startup import Settings

pytestmark = pytest.mark.unit

REDB_KEY = ("app.redislabs.com/v1alpha1", "RedisEnterpriseDatabase", "ns", "db")
REC: dict[str, Any] = {
    "apiVersion": "app.redislabs.com/v1",
    "kind": "RedisEnterpriseCluster",
    "metadata": {"name": "rec", "namespace": "ns", "uid": "u-rec", "generation": 1},
    "spec": {"nodes": 3},
}


class FakeApi:
    """The cluster's REST API: its databases, and the calls made."""

    def __init__(self) -> None:
        self.dbs: dict[int, dict[str, Any]] = {}
        self.calls: list[str] = []

    async def bdbs(self) -> list[dict[str, Any]]:
        self.calls.append("bdbs")
        return [copy.deepcopy(b) for b in self.dbs.values()]

    async def bdb(self, uid: int) -> dict[str, Any]:
        self.calls.append("bdb")
        if uid not in self.dbs:
            raise ClusterApiError(404, {"error_code": "db_not_exist"}, "GET", f"/v1/bdbs/{uid}")
        return copy.deepcopy(self.dbs[uid])

    async def create_bdb(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("create")
        self.dbs[1] = {**body, "uid": 1, "port": 12000, "status": "pending"}
        return copy.deepcopy(self.dbs[1])

    async def update_bdb(self, uid: int, changes: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("update:" + ",".join(sorted(changes)))
        self.dbs[uid].update(changes)
        return copy.deepcopy(self.dbs[uid])

    async def delete_bdb(self, uid: int) -> dict[str, Any]:
        self.calls.append("delete")
        self.dbs[uid]["status"] = "delete-pending"
        return {}

    async def shards(self, uid: int) -> list[dict[str, Any]]:
        self.calls.append("shards")
        return [{"uid": "1", "bdb_uid": uid, "status": "active"}]

    async def action(self, uid: str) -> dict[str, Any]:
        self.calls.append("action")
        return {"status": "completed"}


class FakeCluster:
    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.client = type("Client", (), {"rec": check_rec(REC)})()

    async def call(self, action: Any) -> Any:
        return await action(self.api)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[Context, FakeKube, FakeApi]:
    redb = {"apiVersion": REDB_KEY[0], "kind": REDB_KEY[1],
            "metadata": {"name": "db", "namespace": "ns", "uid": "u-db", "generation": 1},
            "spec": {"memorySize": "100MB"}}
    kube = FakeKube(redb, REC)
    api = FakeApi()
    cluster = FakeCluster(api)

    async def connect(ctx: Context, rec_body: dict[str, Any]) -> FakeCluster:
        return cluster

    async def find_rec(kube: Any, namespace: str, name: str | None) -> dict[str, Any]:
        return copy.deepcopy(REC)

    for module in (redb_reconcile, redb_delete):  # each looks the cluster up itself
        monkeypatch.setattr(module, "connect", connect)
        monkeypatch.setattr(module, "find_rec", find_rec)
    monkeypatch.setattr(settled_check, "known_cluster", lambda *_: cluster)
    settings = Settings(namespaces=("ns",), pod_namespace="ns", identity="t")
    return Context(settings=settings, kube=kube), kube, api  # type: ignore[arg-type]


async def test_create_settle_cheap_resync_drift_and_delete(world: tuple[Context, FakeKube, FakeApi]) -> None:
    ctx, kube, api = world
    resync = ctx.settings.resync_seconds
    assert await reconcile_redb(ctx, "ns", "db") == BUSY_SECONDS  # created, not active yet
    stored = kube.objects[REDB_KEY]
    assert stored["metadata"]["finalizers"] == [FINALIZER] and "create" in api.calls
    assert ("v1", "Secret", "ns", "redb-db") in kube.objects and ("Normal", "Created") in kube.events
    assert stored["status"]["databaseUID"] == "1"

    api.dbs[1]["status"] = "active"
    assert await reconcile_redb(ctx, "ns", "db") == resync  # active: the status says so
    assert stored["status"]["status"] == "active" and ctx.databases.get("ns", "db") is None
    api.calls.clear()
    assert await reconcile_redb(ctx, "ns", "db") == resync  # nothing written: settled
    assert "bdbs" not in api.calls  # found by the uid the status names
    assert ctx.databases.get("ns", "db") is not None

    api.calls.clear()
    gets = kube.gets
    assert await reconcile_redb(ctx, "ns", "db") == resync  # the cheap resync
    assert api.calls == ["bdb", "shards"] and kube.gets - gets == 2  # the REDB and its Secret

    api.dbs[1]["memory_size"] = 1  # changed through the REST API
    api.calls.clear()
    await reconcile_redb(ctx, "ns", "db")
    assert "update:memory_size" in api.calls and ("Normal", "Updated") in kube.events

    stored["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    assert await reconcile_redb(ctx, "ns", "db") == BUSY_SECONDS and "delete" in api.calls
    del api.dbs[1]
    assert await reconcile_redb(ctx, "ns", "db") is None
    assert stored["metadata"]["finalizers"] == [] or "finalizers" not in stored["metadata"]
    assert ("v1", "Secret", "ns", "redb-db") not in kube.objects  # the secret the operator made
