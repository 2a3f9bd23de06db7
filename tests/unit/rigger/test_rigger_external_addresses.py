"""The rigger tells the cluster each database's addresses outside it: its LoadBalancer Services'
`status.loadBalancer.ingress`, so the database's TLS certificates name them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.naming import BDB_UID_LABEL
from recluster.rigger.plan import external_address_changes, external_addresses

pytestmark = pytest.mark.unit


def _service(uid: int, kind: str, *ingress: dict[str, str]) -> dict[str, Any]:
    status = {"loadBalancer": {"ingress": list(ingress)}} if ingress else {}
    return {"metadata": {"name": f"db{uid}-{kind}", "labels": {BDB_UID_LABEL: str(uid)}},
            "spec": {"type": kind}, "status": status}


def test_load_balancer_addresses_are_collected_per_database() -> None:
    services = [
        _service(1, "LoadBalancer", {"ip": "198.18.5.2"}, {"hostname": "DB1.Example.com"}),
        _service(1, "ClusterIP"),
        _service(2, "LoadBalancer"),  # not given an address yet
        {"metadata": {"name": "other"}, "spec": {"type": "LoadBalancer"},
         "status": {"loadBalancer": {"ingress": [{"ip": "198.18.5.9"}]}}},  # not a database's
    ]
    assert external_addresses(services) == {1: ["198.18.5.2", "db1.example.com"], 2: []}


def test_only_databases_whose_addresses_differ_are_told() -> None:
    bdbs = [
        {"uid": 1, "status": "active", "external_addr": ["198.18.5.2"]},
        {"uid": 2, "status": "active", "external_addr": []},
        {"uid": 3, "status": "active", "external_addr": ["198.18.5.3"]},  # its Service went
        {"uid": 4, "status": "delete-pending", "external_addr": []},
        {"uid": 5, "status": "active"},  # a node that does not know the field yet
    ]
    found = {1: ["198.18.5.2"], 2: ["198.18.5.4"], 4: ["198.18.5.5"], 5: ["198.18.5.6"]}
    assert external_address_changes(bdbs, found) == {2: ["198.18.5.4"], 3: []}


@given(st.dictionaries(st.integers(1, 50), st.lists(st.ip_addresses().map(str), unique=True, max_size=3)))
def test_told_once_then_nothing_to_tell(found: dict[int, list[str]]) -> None:
    found = {uid: sorted(a) for uid, a in found.items()}
    bdbs = [{"uid": uid, "status": "active", "external_addr": []} for uid in found]
    changes = external_address_changes(bdbs, found)
    assert changes == {uid: a for uid, a in found.items() if a}
    after = [{**b, "external_addr": changes.get(b["uid"], b["external_addr"])} for b in bdbs]
    assert external_address_changes(after, found) == {}
