"""What both controllers share: the finalizer mechanism, the status/event module, the REC's
deletion step, the clusters' kept REST clients, and the REDB's cheap resync of a settled database."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from tests.unit.operator.fakes import FakeKube

from recluster.api import check_rec
from recluster.api.rec import API_VERSION as REC_API
from recluster.api.rec import FINALIZER as REC_FINALIZER
from recluster.api.rec import ClusterState
from recluster.api.redb import FINALIZER as REDB_FINALIZER
from recluster.clients.kubernetes import KubeError
from recluster.operator import connections
from recluster.operator.connections import ClusterConnections
from recluster.operator.context import Context
from recluster.operator.finalizers import KOPF_FINALIZER, LEGACY_FINALIZERS, held, hold, release
from recluster.operator.rec.cluster import Credentials, NodePod
from recluster.operator.rec.delete import STOPPING_RECHECK_S, delete_step
from recluster.operator.rec.reconcile import reconcile_rec
from recluster.operator.rec.status import INVALID_FIELDS, state_changes
from recluster.operator.redb import settled_check
from recluster.operator.redb.settled import fingerprint, settled
from recluster.operator.startup import Settings
from recluster.operator.status import report_invalid, write_status
from recluster.operator.tls import issue_server_certificate

pytestmark = pytest.mark.unit

def rec_body(**meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1",
        "kind": "RedisEnterpriseCluster",
        "metadata": {"name": "rec", "namespace": "ns", "uid": "u-1", "generation": 1, **meta},
        "spec": {"nodes": 3},
    }


def test_kopf_finalizer_is_none_of_the_contract_names() -> None:
    # kopf strips its own finalizer from objects no handler needs it for: it must not be ours
    assert KOPF_FINALIZER not in (REC_FINALIZER, REDB_FINALIZER, *LEGACY_FINALIZERS)


async def test_hold_adds_the_finalizer_once_and_release_drops_ours_and_kopfs_marker() -> None:
    kube = FakeKube(rec_body(finalizers=["someone.else/keep"]))
    body = await kube.get("app.redislabs.com/v1", "RedisEnterpriseCluster", "ns", "rec")
    assert body is not None and not held(body, REC_FINALIZER)
    body = await hold(kube, body, REC_FINALIZER)
    assert body["metadata"]["finalizers"] == ["someone.else/keep", REC_FINALIZER]
    assert await hold(kube, body, REC_FINALIZER) is body  # nothing to do
    assert len(kube.patches) == 1
    kube.objects[next(iter(kube.objects))]["metadata"]["finalizers"].append(LEGACY_FINALIZERS[0])
    body = await kube.get("app.redislabs.com/v1", "RedisEnterpriseCluster", "ns", "rec")
    await release(kube, body, REC_FINALIZER)
    stored = next(iter(kube.objects.values()))
    assert stored["metadata"]["finalizers"] == ["someone.else/keep"]


async def test_a_finalizer_write_over_a_newer_object_fails() -> None:
    kube = FakeKube(rec_body())
    stale = await kube.get("app.redislabs.com/v1", "RedisEnterpriseCluster", "ns", "rec")
    await kube.merge_patch(REC_API, "RedisEnterpriseCluster", "ns", "rec", {"spec": {"nodes": 5}})
    with pytest.raises(KubeError):
        await hold(kube, stale, REC_FINALIZER)


async def test_write_status_patches_only_changes_and_posts_the_kinds_events() -> None:
    body = rec_body()
    body["status"] = {"state": "Running", "readyNodes": 3, "shardStatuses": {"active": 2, "down": 1}}
    kube = FakeKube(body)
    await write_status(kube, body, {"state": "Running", "readyNodes": 3}, state_changes)
    assert kube.patches == [] and kube.events == []
    await write_status(kube, body, {"state": "RecoveringFirstPod", "shardStatuses": {"active": 3}},
                       state_changes)
    (_, patch), = kube.patches
    # a key gone from a map of the status is removed explicitly
    assert patch["status"]["shardStatuses"] == {"down": None, "active": 3}
    assert kube.events == [("Normal", "StatusChange")]


async def test_a_key_gone_from_a_nested_map_of_the_status_is_removed() -> None:
    """A Secret fixed: certificatesStatus.api loses its message (a merge patch would keep it)."""
    body = rec_body()
    body["status"] = {"certificatesStatus": {"api": {"source": "secret", "message": "bad key"},
                                             "proxy": {"source": "cluster"}}}
    kube = FakeKube(body)
    await write_status(kube, body, {"certificatesStatus": {"api": {"source": "secret", "notAfter": "t"},
                                                           "proxy": {"source": "cluster"}}})
    (_, patch), = kube.patches
    assert patch["status"]["certificatesStatus"]["api"] == {"message": None, "source": "secret",
                                                            "notAfter": "t"}
    stored = next(iter(kube.objects.values()))["status"]["certificatesStatus"]
    assert stored == {"api": {"source": "secret", "notAfter": "t"}, "proxy": {"source": "cluster"}}


async def test_report_invalid_sets_the_kinds_fields_and_warns() -> None:
    body = rec_body()
    kube = FakeKube(body)
    await report_invalid(kube, body, "spec.nodes: must be odd", state_changes, INVALID_FIELDS)
    status = next(iter(kube.objects.values()))["status"]
    assert status["state"] == ClusterState.INVALID.value and status["specStatus"] == "Invalid"
    assert ("Warning", "InvalidConfiguration") in kube.events


async def test_rec_deletion_waits_for_the_pods_then_releases_the_finalizer() -> None:
    body = rec_body(finalizers=[REC_FINALIZER], deletionTimestamp="2030-01-01T00:00:00Z")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rec-0", "namespace": "ns"}}
    kube = FakeKube(body, pod)
    assert await delete_step(kube, copy.deepcopy(body)) == STOPPING_RECHECK_S
    stored = kube.objects[("app.redislabs.com/v1", "RedisEnterpriseCluster", "ns", "rec")]
    assert stored["status"]["state"] == ClusterState.DELETING.value
    del kube.objects[("v1", "Pod", "ns", "rec-0")]
    # the body read before the status write is stale: the step reads the REC again to release it
    assert await delete_step(kube, copy.deepcopy(body)) is None
    assert REC_FINALIZER not in (stored["metadata"].get("finalizers") or [])
    assert await delete_step(kube, rec_body(deletionTimestamp="2030-01-01T00:00:00Z")) is None


async def test_one_client_per_cluster_until_its_credentials_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "CLOSE_AFTER_S", 0.0)
    clusters = ClusterConnections()
    rec = check_rec(rec_body())
    ca = issue_server_certificate("rec.ns.svc.cluster.local", ["rec.ns.svc.cluster.local"]).ca_certificate_pem
    first = clusters.client(rec, ca, Credentials("u", "p", "license"), "cluster.local")
    # the REDB controller asks without the license: the same cluster, the same client
    assert clusters.client(rec, ca, Credentials("u", "p"), "cluster.local") is first
    pod = NodePod(name="rec-0", ordinal=0, ip="198.18.8.5", ready=True, deleting=False, revision=None)
    async with first.api(pod) as api:
        pass
    async with first.api(pod) as again:
        assert again is api  # kept across calls
    clusters.pods_listed(first, [pod])
    assert clusters.cached("ns", "rec") is first and first.pods == [pod]
    rotated = clusters.client(rec, ca, Credentials("u", "new"), "cluster.local")
    assert rotated is not first and clusters.cached("ns", "rec") is rotated
    await asyncio.sleep(0.05)
    assert api._http.is_closed  # the replaced client's connections are closed
    clusters.forget("ns", "rec")
    assert clusters.cached("ns", "rec") is None
    await clusters.close()


class FakeCluster:
    def __init__(self, generation: int, bdb: dict[str, Any], shards: list[dict[str, Any]]) -> None:
        self.client = type("Client", (), {"rec": check_rec(rec_body(generation=generation))})()
        self.bdb, self.shards, self.calls = bdb, shards, 0

    async def call(self, action: Any) -> Any:
        self.calls += 1
        return copy.deepcopy(self.bdb if self.calls % 2 else self.shards)


async def test_a_settled_database_is_checked_cheaply_and_any_move_means_a_full_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redb: dict[str, Any] = {"apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseDatabase",
            "metadata": {"name": "db", "namespace": "ns", "resourceVersion": "7"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redb-db", "namespace": "ns",
                                                                  "resourceVersion": "3"}}
    bdb = {"uid": 1, "name": "db", "status": "active", "memory_size": 100}
    shards = [{"uid": "1", "status": "active"}, {"uid": "2", "status": "active"}]
    entry = settled(redb, "redb-db", secret, rec_body(), bdb, shards, 300.0)
    kube = FakeKube(copy.deepcopy(secret))
    ctx = Context(settings=Settings(namespaces=("ns",), pod_namespace="ns", identity="t"), kube=kube)
    cluster = FakeCluster(1, bdb, shards)
    monkeypatch.setattr(settled_check, "known_cluster", lambda *_: cluster)
    assert await settled_check.still_settled(ctx, redb, entry)
    assert fingerprint(bdb, shards) == entry.seen

    cluster.bdb = {**bdb, "memory_size": 200}  # changed through the REST API: drift
    assert not await settled_check.still_settled(ctx, redb, entry)
    cluster.bdb, cluster.shards = bdb, [{"uid": "1", "status": "active"}, {"uid": "2", "status": "down"}]
    assert not await settled_check.still_settled(ctx, redb, entry)
    cluster.shards = shards
    assert not await settled_check.still_settled(ctx, {**redb, "metadata": {**redb["metadata"],
                                                                              "resourceVersion": "8"}}, entry)
    kube.objects[("v1", "Secret", "ns", "redb-db")]["metadata"]["resourceVersion"] = "4"  # password rotated
    assert not await settled_check.still_settled(ctx, redb, entry)
    kube.objects[("v1", "Secret", "ns", "redb-db")]["metadata"]["resourceVersion"] = "3"
    monkeypatch.setattr(settled_check, "known_cluster", lambda *_: FakeCluster(2, bdb, shards))
    assert not await settled_check.still_settled(ctx, redb, entry)  # the REC's spec changed
    monkeypatch.setattr(settled_check, "known_cluster", lambda *_: None)
    assert not await settled_check.still_settled(ctx, redb, entry)  # no kept client: the full pass


async def test_a_rotated_backup_secret_ends_the_settled_state(monkeypatch: pytest.MonkeyPatch) -> None:
    redb: dict[str, Any] = {"apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseDatabase",
                            "metadata": {"name": "db", "namespace": "ns", "resourceVersion": "7"}}
    keys = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-backup-keys", "namespace": "ns",
                                                                "resourceVersion": "5"}}
    bdb = {"uid": 1, "name": "db", "status": "active"}
    shards = [{"uid": "1", "status": "active"}]
    entry = settled(redb, None, None, rec_body(), bdb, shards, 300.0, (keys,))
    kube = FakeKube(copy.deepcopy(keys))
    ctx = Context(settings=Settings(namespaces=("ns",), pod_namespace="ns", identity="t"), kube=kube)
    monkeypatch.setattr(settled_check, "known_cluster", lambda *_: FakeCluster(1, bdb, shards))
    assert await settled_check.still_settled(ctx, redb, entry)
    kube.objects[("v1", "Secret", "ns", "db-backup-keys")]["metadata"]["resourceVersion"] = "6"  # rotated
    assert not await settled_check.still_settled(ctx, redb, entry)
    del kube.objects[("v1", "Secret", "ns", "db-backup-keys")]
    assert not await settled_check.still_settled(ctx, redb, entry)


class RefusingKube(FakeKube):
    """The webhook refuses every update of the stored object (its stored spec is invalid)."""

    async def merge_patch(self, api_version: str, kind: str, namespace: str, name: str,
                          patch: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        if not subresource:
            raise KubeError(422, "admission webhook denied the request", "PATCH")
        return await super().merge_patch(api_version, kind, namespace, name, patch, subresource)


async def test_an_invalid_rec_the_webhook_will_not_let_us_hold_still_says_why() -> None:
    body = rec_body()
    body["spec"]["nodes"] = 4  # stored before the webhook was there
    kube = RefusingKube(body)
    settings = Settings(namespaces=("ns",), pod_namespace="ns", identity="t")
    ctx = Context(settings=settings, kube=kube)  # type: ignore[arg-type]
    assert await reconcile_rec(ctx, "ns", "rec") == ctx.settings.resync_seconds
    status = kube.objects[(REC_API, "RedisEnterpriseCluster", "ns", "rec")]["status"]
    assert status["specStatus"] == "Invalid" and status["state"] == ClusterState.INVALID.value
