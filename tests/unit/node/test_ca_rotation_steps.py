"""The steps of a database CA rotation (node/ca_rotation.py): the next CA trusted first, signing
at its time, the replaced one trusted until its time is up; a node reissues what the old CA signed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recluster.certificates import Authority, issued_by
from recluster.node.ca_rotation import RETIRE_AFTER_S, apply_step, next_step
from recluster.node.database_tls import DatabaseTls
from recluster.node.records import BdbRecord, ClusterRecord

pytestmark = pytest.mark.unit


def test_next_ca_trusted_then_signing_then_the_old_one_dropped(tmp_path: Path) -> None:
    old, new = (Authority.create("c databases CA", days=10).pem() for _ in range(2))
    cluster = ClusterRecord(name="c", created_time="", username="a", password_hash="",
                            database_ca_cert=old.certificate, database_ca_key=old.key)
    assert next_step(cluster, 1000.0) is None
    cluster.database_ca_next_cert, cluster.database_ca_next_key, cluster.database_ca_next_at = \
        new.certificate, new.key, 2000.0
    trust = cluster.database_trust()
    assert old.certificate.strip() in trust and new.certificate.strip() in trust
    assert next_step(cluster, 1999.0) is None

    # a node before the switch: signs with the old CA, trusts both
    tls, shard = DatabaseTls(tmp_path, "n", "127.0.0.9", ""), tmp_path / "shard"
    bdb = BdbRecord.model_validate({
        "uid": 1, "name": "db", "memory_size": 1, "port": 10001, "replication": False,
        "data_persistence": "disabled", "aof_policy": "appendfsync-every-sec", "snapshot_policy": [],
        "eviction_policy": "noeviction", "tls_mode": "enabled", "status": "active"})
    now = dt.datetime.now(dt.UTC)
    tls.ensure_node(cluster, now)
    assert tls.ensure_shard(old, bdb, shard, now)
    assert issued_by((shard / "tls" / "cert.pem").read_text(), old.certificate)

    assert next_step(cluster, 2000.0) == "promote"
    apply_step(cluster, "promote", 2000.0)
    assert cluster.database_ca() == new and not cluster.database_ca_next_cert
    assert cluster.database_ca_previous_cert == old.certificate
    assert old.certificate.strip() in cluster.database_trust()
    # after the switch the node reissues from the new CA (the trust list has both still)
    tls.ensure_node(cluster, now)
    assert tls.ensure_shard(new, bdb, shard, now)
    assert issued_by((shard / "tls" / "cert.pem").read_text(), new.certificate)

    assert next_step(cluster, 2000.0 + RETIRE_AFTER_S - 1) is None
    assert next_step(cluster, 2000.0 + RETIRE_AFTER_S) == "retire"
    apply_step(cluster, "retire", 2000.0 + RETIRE_AFTER_S)
    assert cluster.database_trust().strip() == new.certificate.strip()
    assert next_step(cluster, 1e12) is None
