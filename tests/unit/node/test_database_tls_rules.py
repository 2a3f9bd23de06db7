"""Database TLS decisions that need no process: the names a shard's certificate carries, what a shard
trusts, the redis.conf lines, when a certificate is reissued, and the REST rules for the TLS fields."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recluster.certificates import Authority, Pem, UserCertificate, certificate_names
from recluster.node.bdb_fields import ClientCert
from recluster.node.database_tls import (
    DatabaseTls,
    database_names,
    domain_suffixes,
    shard_directives,
    trust_bundle,
)
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState
from recluster.node.request_models import BdbCreate, BdbUpdate
from recluster.node.validation import updated_bdb

pytestmark = pytest.mark.unit

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


def bdb(**changes: object) -> BdbRecord:
    fields: dict[str, object] = {
        "uid": 3, "name": "orders", "memory_size": 1, "port": 10003, "replication": True,
        "data_persistence": "disabled", "aof_policy": "appendfsync-every-sec", "snapshot_policy": [],
        "eviction_policy": "noeviction", "tls_mode": "enabled", "status": "active"}
    return BdbRecord.model_validate(fields | changes)


@given(st.lists(LABEL, min_size=1, max_size=5))
def test_domain_forms_are_the_prefixes_a_kubernetes_client_appends(labels: list[str]) -> None:
    forms = domain_suffixes(".".join(labels))
    assert (forms[0] == labels[0] and forms[-1] == ".".join(labels[: max(3, len(forms))][: len(labels)])) or \
        forms[-1] == ".".join(labels)
    assert all(".".join(labels).startswith(form) for form in forms)
    assert len(forms) == min(len(labels), 3)


def test_a_shard_certificate_names_every_service_form_and_the_node() -> None:
    names = database_names(bdb(), "rec-0.rec.ns.svc.cluster.local", "198.18.8.5", "ns.svc.cluster.local")
    for wanted in ("orders", "orders.ns", "orders.ns.svc", "orders.ns.svc.cluster.local",
                   "orders-headless.ns.svc.cluster.local", "redis-10003.ns", "orders-load-balancer",
                   "rec-0.rec.ns.svc.cluster.local", "198.18.8.5"):
        assert wanted in names
    assert len(names) == len(set(names))
    # outside Kubernetes: short names and the node only
    assert set(database_names(bdb(), "127.0.0.11", "127.0.0.11", "")) == {
        "orders", "orders-headless", "orders-load-balancer", "redis-10003", "redis-10003-headless",
        "redis-10003-load-balancer", "127.0.0.11"}


def test_client_certificates_are_trusted_only_when_enforced_and_listed() -> None:
    ca = Authority.create("cluster", days=1).pem().certificate
    client = Authority.create("clients", days=1).pem().certificate
    listed = [ClientCert(client_cert=client)]
    assert client.strip() in trust_bundle(ca, bdb(authentication_ssl_client_certs=listed))
    assert trust_bundle(ca, bdb(authentication_ssl_client_certs=listed,
                                enforce_client_authentication="disabled")).strip() == ca.strip()
    on = shard_directives(bdb(authentication_ssl_client_certs=listed), Path("/d"))
    assert "tls-auth-clients yes" in on and "port 0" in on and "tls-port 10003" in on
    assert "tls-replication yes" in on
    assert "tls-auth-clients no" in shard_directives(bdb(), Path("/d"))


def test_a_certificate_is_reissued_for_new_names_a_new_ca_and_before_it_expires(tmp_path: Path) -> None:
    ca = Authority.create("cluster", days=3650).pem()
    now = dt.datetime.now(dt.UTC)
    tls = DatabaseTls(tmp_path, "node-a", "127.0.0.9", "")
    shard = tmp_path / "shard"
    assert tls.ensure_shard(ca, bdb(), shard, now)
    cert = (shard / "tls" / "cert.pem").read_text()
    assert "orders" in certificate_names(cert) and "127.0.0.9" in certificate_names(cert)
    assert (shard / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    assert not tls.ensure_shard(ca, bdb(), shard, now)  # current: kept
    fresh = DatabaseTls(tmp_path, "node-a", "127.0.0.9", "")  # no memory of the last check
    assert not fresh.ensure_shard(ca, bdb(), shard, now)
    assert fresh.ensure_shard(ca, bdb(), shard, now + dt.timedelta(days=340))  # within 30 days of expiry
    moved = DatabaseTls(tmp_path, "node-a", "127.0.0.10", "")  # the pod came back at a new address
    assert moved.ensure_shard(ca, bdb(), shard, now)
    assert moved.ensure_shard(Authority.create("new", days=10).pem(), bdb(), shard, now)


def cluster_record(ca: Pem, user: UserCertificate | None) -> ClusterRecord:
    return ClusterRecord(name="c", created_time="", username="a", password_hash="",
                         database_ca_cert=ca.certificate, database_ca_key=ca.key,
                         proxy_chain=user.chain if user else "",
                         proxy_key=user.key if user else "", proxy_anchors=user.anchors if user else "")


def test_a_user_certificate_is_served_and_the_issued_one_stays_the_shards_client_identity(
        tmp_path: Path) -> None:
    ca = Authority.create("cluster", days=3650).pem()
    now = dt.datetime.now(dt.UTC)
    user_root = Authority.create("user root", days=30, now=now)
    leaf = user_root.issue("orders", ["orders"], days=20, now=now)
    cluster = cluster_record(ca, UserCertificate(leaf.certificate, leaf.key, user_root.pem().certificate))
    tls, shard = DatabaseTls(tmp_path, "node-a", "127.0.0.9", ""), tmp_path / "shard"
    files = shard / "tls"
    assert tls.ensure_node(cluster, now)
    assert tls.ensure_shard(ca, bdb(), shard, now)
    assert (files / "cert.pem").read_text() == leaf.certificate
    assert (files / "key.pem").read_text() == leaf.key
    client = (files / "client.pem").read_text()
    assert "127.0.0.9" in certificate_names(client)  # issued by the node: replicas present it
    trusted = (files / "ca.pem").read_text()  # replicas verify the master's (user's) certificate
    assert user_root.pem().certificate.strip() in trusted and ca.certificate.strip() in trusted
    assert user_root.pem().certificate.strip() in (tmp_path / "tls-databases" / "ca.pem").read_text()
    assert not tls.ensure_shard(ca, bdb(), shard, now)
    # a new user certificate (a new CA too) is put in place at once, the node's identity reissued
    # for the new trust list; without one the shard serves its issued certificate again
    root2 = Authority.create("user root 2", days=30, now=now)
    leaf2 = root2.issue("orders", ["orders"], days=20, now=now)
    assert tls.ensure_node(cluster_record(ca, UserCertificate(leaf2.certificate, leaf2.key,
                                                              root2.pem().certificate)), now)
    assert tls.ensure_shard(ca, bdb(), shard, now)
    assert (files / "cert.pem").read_text() == leaf2.certificate
    assert user_root.pem().certificate.strip() not in (files / "ca.pem").read_text()
    assert tls.ensure_node(cluster_record(ca, None), now)
    assert tls.ensure_shard(ca, bdb(), shard, now)
    assert (files / "cert.pem").read_text() == (files / "client.pem").read_text()
    assert (files / "ca.pem").read_text().strip() == ca.certificate.strip()
    lines = shard_directives(bdb(), shard)
    assert f"tls-client-cert-file {files / 'client.pem'}" in lines
    assert f"tls-client-key-file {files / 'client-key.pem'}" in lines


def test_the_rest_api_refuses_replica_ssl_and_a_certificate_that_is_not_one() -> None:
    with pytest.raises(ValidationError, match="replica_ssl encrypts the syncs of Replica Of"):
        BdbCreate.model_validate({"name": "x", "memory_size": 1, "tls_mode": "replica_ssl"})
    with pytest.raises(ValidationError, match=r"\[1\]\.client_cert is not a PEM X.509 certificate"):
        BdbCreate.model_validate({"name": "x", "memory_size": 1, "tls_mode": "enabled",
                                  "authentication_ssl_client_certs": [
                                      {"client_cert": Authority.create("c", days=1).pem().certificate},
                                      {"client_cert": "hello"}]})


def test_tls_mode_cannot_change_on_a_live_database_and_client_certificates_can() -> None:
    state = ClusterState(cluster=ClusterRecord(name="c", created_time="", username="u", password_hash="h"))
    current = bdb(tls_mode="disabled")
    with pytest.raises(ApiError, match="'tls_mode': cannot be changed"):
        updated_bdb(state, current, BdbUpdate(tls_mode="enabled"), "now")
    secure = bdb(replication=False)
    cert = Authority.create("c", days=1).pem().certificate
    listed = BdbUpdate(authentication_ssl_client_certs=[ClientCert(client_cert=cert)])
    merged = updated_bdb(state, secure, listed, "now")
    assert merged.client_certificates() == [cert] and merged.client_auth()
