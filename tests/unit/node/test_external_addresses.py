"""A bdb's `external_addr` (recluster's: the addresses of its LoadBalancer Services, set by the services
rigger): checked as addresses a certificate can name, stored without making the database busy, named
by its TLS shards' certificates, and shown as the public shape's external endpoint."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recluster.node.bdb_fields import MAX_EXTERNAL_ADDRESSES
from recluster.node.database_tls import database_names
from recluster.node.engines import Engine, EngineTable
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState, NodeRecord, ShardRecord
from recluster.node.request_models import BdbUpdate
from recluster.node.validation import updated_bdb
from recluster.node.views import bdb_view

pytestmark = pytest.mark.unit

ENGINES = EngineTable.of([Engine("redis", 8, 0, 2, "/usr/bin/redis-server")])


def _bdb(**extra: object) -> BdbRecord:
    fields: dict[str, object] = {"status": "active", "replication": True, **extra}
    return BdbRecord(
        uid=1, name="db", memory_size=100 << 20, port=12000,
        data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
        eviction_policy="volatile-lru", tls_mode="enabled", **fields,  # type: ignore[arg-type]
    )


def _state(bdb: BdbRecord) -> ClusterState:
    return ClusterState(
        cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"), bdbs={1: bdb}
    )


@given(st.lists(st.ip_addresses().map(str), max_size=MAX_EXTERNAL_ADDRESSES))
def test_any_ip_address_is_accepted_once(addresses: list[str]) -> None:
    assert BdbUpdate(external_addr=addresses).external_addr == list(dict.fromkeys(addresses))


@given(st.text(min_size=1, max_size=40).filter(lambda t: any(c.isupper() or c in " _/:*" for c in t)))
def test_what_is_not_an_address_or_a_dns_name_is_refused_naming_the_entry(text: str) -> None:
    try:
        ipaddress.ip_address(text)
        return  # an IPv6 address has ':'; it is an address
    except ValueError:
        pass
    with pytest.raises(ValidationError) as refused:
        BdbUpdate(external_addr=["db.example.com", text])
    assert "external_addr" in str(refused.value) and "[1]" in str(refused.value)


def test_a_dns_name_is_accepted_and_too_many_are_refused() -> None:
    assert BdbUpdate(external_addr=["a1b2-elb.eu-west-1.elb.amazonaws.com"]).external_addr
    with pytest.raises(ValidationError):
        BdbUpdate(external_addr=[f"198.18.0.{i}" for i in range(MAX_EXTERNAL_ADDRESSES + 1)])


def test_setting_external_addresses_alone_does_not_make_the_database_busy() -> None:
    current = _bdb()
    merged = updated_bdb(_state(current), current, BdbUpdate(external_addr=["198.18.5.1"]), "now")
    assert merged.external_addr == ["198.18.5.1"]
    assert (merged.status, merged.generation) == ("active", current.generation)
    # also while the database is changing for another reason (the rigger does not wait for it)
    pending = _bdb(status="active-change-pending")
    assert updated_bdb(_state(pending), pending, BdbUpdate(external_addr=["198.18.5.1"]), "now").external_addr
    # the same addresses again: nothing changes
    assert updated_bdb(_state(merged), merged, BdbUpdate(external_addr=["198.18.5.1"]), "now") is merged


def test_a_database_being_deleted_takes_no_addresses_and_other_changes_stay_a_change() -> None:
    deleting = _bdb(status="delete-pending")
    with pytest.raises(ApiError) as busy:
        updated_bdb(_state(deleting), deleting, BdbUpdate(external_addr=["198.18.5.1"]), "now")
    assert busy.value.status == 409
    current = _bdb(replication=False)  # (a replica would need nodes in this state)
    both = updated_bdb(_state(current), current, BdbUpdate(external_addr=["198.18.5.1"], memory_size=1 << 30),
                       "now")
    assert both.status == "active-change-pending" and both.external_addr == ["198.18.5.1"]


def test_the_shards_certificates_name_the_external_addresses() -> None:
    node = ("rec-0.rec.ns.svc", "198.18.8.2", "ns.svc.cluster.local")
    names = database_names(_bdb(external_addr=["198.18.5.1", "db.example.com"]), *node)
    assert {"198.18.5.1", "db.example.com", "db-load-balancer", "rec-0.rec.ns.svc"} <= set(names)
    assert "198.18.5.1" not in database_names(_bdb(), *node)


def test_the_view_shows_an_external_endpoint_only_when_there_are_addresses() -> None:
    bdb = _bdb(external_addr=["198.18.5.1", "db.example.com"])
    state = _state(bdb)
    state.nodes[1] = NodeRecord(uid=1, name="rec-0", addr="198.18.8.2", api_port=9443, ccs_port=9081,
                                sentinel_port=8001, metrics_port=8070)
    state.shards[1] = ShardRecord(uid=1, bdb_uid=1, node_uid=1, role="master")
    endpoints = bdb_view(state, bdb, ENGINES)["endpoints"]
    assert [e["addr_type"] for e in endpoints] == ["internal", "external"]
    assert endpoints[1]["addr"] == ["198.18.5.1"] and endpoints[1]["dns_name"] == "db.example.com"
    state.bdbs[1] = _bdb()
    assert [e["addr_type"] for e in bdb_view(state, state.bdbs[1], ENGINES)["endpoints"]] == ["internal"]
