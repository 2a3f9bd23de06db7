"""The rigger's act step against a recording fake of Kube: the order of writes after a Sentinel
announcement, unchanged slices skipped, kube-controller-manager's leftovers removed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from recluster.rigger.loop import Rigger
from recluster.rigger.observe import NodePod, RiggerConfig
from recluster.rigger.plan import Database, Pod, Settings, plan, slice_matches

pytestmark = pytest.mark.unit

SETTINGS = Settings(cluster="rec", namespace="ns")
PODS = [Pod("rec-0", {}, "10.0.0.10"), Pod("rec-1", {}, "10.0.0.11")]


class FakeKube:
    def __init__(self, listed: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.listed = listed or {}

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        return obj

    async def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str,
                          patch: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        self.calls.append(("patch", kind, name))
        return patch

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        self.calls.append(("delete", kind, name))
        return True

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", kind, label_selector or ""))
        return self.listed.get(kind, [])


def rigger(kube: FakeKube) -> Rigger:
    nowhere = Path("/nonexistent")
    config = RiggerConfig(cluster="rec", namespace="ns", api_url="https://rec:9443",
                          credentials_dir=nowhere, ca_file=nowhere, settings=SETTINGS)
    result = Rigger(config, kube)  # type: ignore[arg-type]
    result.leading = True
    result.passes = 1  # not a refresh pass
    result.writer.slices_unknown = False  # as if it had led for a while
    return result


async def test_after_an_announcement_slices_are_written_before_labels_and_only_when_changed() -> None:
    kube = FakeKube()
    r = rigger(kube)
    dbs = [Database(uid=i, name=f"db{i}", port=12000 + i, master_pod="rec-1") for i in range(1, 21)]
    pods = [Pod("rec-0", {f"redis.io/bdb-{i}": str(i) for i in range(1, 21)}, "10.0.0.10"), PODS[1]]
    await r.writer.act(plan(SETTINGS, dbs, pods, []), fast=True, refresh=False)
    kinds = [kind for _, kind, _ in kube.calls]
    assert kinds.count("EndpointSlice") == 40 and kinds.count("Pod") == 2
    assert kinds.index("Pod") > max(i for i, k in enumerate(kinds) if k == "EndpointSlice")
    assert "Service" not in kinds  # the fast path writes no Service
    first = [name for _, kind, name in kube.calls if kind == "EndpointSlice"][:20]
    assert not any(name.endswith("-headless") for name in first)  # what clients use, first
    kube.calls.clear()
    await r.writer.act(plan(SETTINGS, dbs, PODS, []), fast=True, refresh=False)
    assert [c for c in kube.calls if c[1] == "EndpointSlice"] == []  # unchanged: not written again


async def test_a_failed_slice_write_does_not_stop_the_others() -> None:
    kube = FakeKube()
    failing = "db1"
    original = kube.apply

    async def apply(obj: dict[str, Any]) -> dict[str, Any]:
        if obj["metadata"]["name"] == failing:
            raise RuntimeError("refused")
        return await original(obj)

    kube.apply = apply  # type: ignore[method-assign]
    r = rigger(kube)
    dbs = [Database(uid=i, name=f"db{i}", port=12000 + i, master_pod="rec-1") for i in range(1, 4)]
    with pytest.raises(RuntimeError):
        await r.writer.apply_slices(plan(SETTINGS, dbs, PODS, []).slices, refresh=False)
    written = {name for _, kind, name in kube.calls if kind == "EndpointSlice"}
    assert written == {"db1-headless", "db2", "db2-headless", "db3", "db3-headless"}
    assert "endpointslice/db1" not in r.writer.applied


async def test_leftovers_of_a_selector_are_removed() -> None:
    managed_by = "endpointslice.kubernetes.io/managed-by"
    foreign = {"metadata": {"name": "db1-x7k2p", "labels": {managed_by: "endpointslice-controller.k8s.io"}}}
    own = {"metadata": {"name": "db1", "labels": {managed_by: "recluster-services-rigger"}}}
    kube = FakeKube({"EndpointSlice": [foreign, own], "Endpoints": [{"metadata": {"name": "db1"}}]})
    r = rigger(kube)
    own_slices, foreign_slices = await r.reader.service_slices()
    assert (own_slices, foreign_slices) == (["db1"], ["db1-x7k2p"])
    assert await r.writer.remove_leftovers(foreign_slices) == 2
    assert ("delete", "Endpoints", "db1") in kube.calls
    assert ("delete", "EndpointSlice", "db1-x7k2p") in kube.calls
    assert ("delete", "EndpointSlice", "db1") not in kube.calls
    selectors = {selector for verb, _, selector in kube.calls if verb == "list"}
    assert selectors == {"redis.io/cluster=rec,app.kubernetes.io/managed-by=recluster-services-rigger"}


def test_an_announcement_by_ip_gives_the_slice_its_address() -> None:
    r = rigger(FakeKube())
    r.on_switch_master(b"db1 10.0.0.10 12001 10.0.0.11 12001")
    assert r.wake.is_set() and r.relabel.is_set()  # the slices move before the next pass
    pods = [NodePod("rec-0", "10.0.0.10", True, {}), NodePod("rec-1", "10.0.0.11", True, {})]
    endpoints = [{"dns_name": "rec-0.rec.ns.svc.cluster.local"}]
    bdb = {"uid": 1, "name": "db1", "port": 12001, "endpoints": endpoints}
    assert r.masters.master_pod(bdb, pods) == ("rec-1", "10.0.0.11")
    del r.masters.overrides["db1"]
    assert r.masters.master_pod(bdb, pods) == ("rec-0", None)


async def test_a_new_leader_rewrites_only_the_slices_the_old_one_left_different() -> None:
    dbs = [Database(uid=i, name=f"db{i}", port=12000 + i, master_pod="rec-1") for i in range(1, 4)]
    wanted = plan(SETTINGS, dbs, PODS, []).slices
    moved = next(s for s in wanted if s["metadata"]["name"] == "db2")
    stale = {**moved, "endpoints": [{**moved["endpoints"][0], "addresses": ["10.0.0.10"]}]}
    as_stored = [{**s, "metadata": {**s["metadata"], "uid": "x", "resourceVersion": "7"}}
                 for s in wanted if s is not moved] + [stale]
    kube = FakeKube({"EndpointSlice": as_stored})
    r = rigger(kube)
    r.lead()
    await r.writer.act(plan(SETTINGS, dbs, PODS, []), fast=True, refresh=False)
    written = [name for verb, kind, name in kube.calls if verb == "apply" and kind == "EndpointSlice"]
    assert written == ["db2"]
    assert kube.calls[0][0] == "list"  # read once, before any write


def test_a_slice_matches_only_when_it_sends_traffic_to_the_same_place() -> None:
    db = Database(uid=1, name="db1", port=12001, master_pod="rec-1")
    wanted = plan(SETTINGS, [db], PODS, []).slices[0]
    stored = {**wanted, "metadata": {**wanted["metadata"], "uid": "x",
                                     "labels": {**wanted["metadata"]["labels"], "extra": "1"}}}
    assert slice_matches(stored, wanted)
    other_ip = {**wanted, "endpoints": [{**wanted["endpoints"][0], "addresses": ["10.0.0.10"]}]}
    assert not slice_matches(other_ip, wanted)
    other_port = {**wanted, "ports": [{"name": "redis", "protocol": "TCP", "port": 1}]}
    assert not slice_matches(other_port, wanted)
    unlabelled = {**wanted, "metadata": {**wanted["metadata"], "labels": {}}}
    assert not slice_matches(unlabelled, wanted)
