"""The cluster's own logins to a database's shards: one user per job with only that job's commands, the
internal password (never the database's) hashed in the shard's config, and a database made before
them keeping its older logins."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.node.config import NodeConfig
from recluster.node.engines import Engine, EngineTable
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState, ShardRecord
from recluster.node.shard_users import JOB_PERMISSIONS, internal_users
from recluster.node.shards import render_config, runtime_settings
from recluster.node.views import bdb_view

pytestmark = pytest.mark.unit

DB_PASSWORD = "the-database-password"
INTERNAL = "the-internal-password"


def _bdb(default_user: bool = True, internal_password: str = INTERNAL) -> BdbRecord:
    return BdbRecord(uid=3, name="db", memory_size=100 << 20, port=12000, replication=True,
                     data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                     eviction_policy="volatile-lru", authentication_redis_pass=DB_PASSWORD,
                     default_user=default_user, internal_password=internal_password)


def _config(bdb: BdbRecord, tmp_path: Path) -> str:
    shard = ShardRecord(uid=5, bdb_uid=bdb.uid, node_uid=1, role="slave")
    return render_config(NodeConfig(addr="127.0.0.1", data_dir=tmp_path), tmp_path, bdb,
                         runtime_settings(bdb, shard), ("127.0.0.2", 12000), internal_users(bdb))


def _user_lines(conf: str) -> dict[str, str]:
    return {line.split()[1].strip('"'): line for line in conf.splitlines() if line.startswith("user ")}


@pytest.mark.parametrize("default_user", [True, False])
def test_each_job_logs_in_as_its_own_user_with_the_internal_password(default_user: bool) -> None:
    bdb = _bdb(default_user)
    assert bdb.login("control") == ("recluster-internal", INTERNAL)
    assert bdb.login("replication") == ("recluster-replication", INTERNAL)
    assert bdb.login("sentinel") == ("recluster-sentinel", INTERNAL)


@pytest.mark.parametrize("default_user", [True, False])
def test_a_shard_config_has_the_job_users_hashed_and_the_replica_logs_in_as_replication(
        default_user: bool, tmp_path: Path) -> None:
    conf = _config(_bdb(default_user), tmp_path)
    users = _user_lines(conf)
    digest = hashlib.sha256(INTERNAL.encode()).hexdigest()
    assert set(users) == {"recluster-internal", "recluster-replication", "recluster-sentinel",
                          "recluster-import"} | (set() if default_user else {"default"})
    import_words = [w.strip('"') for w in users["recluster-import"].split()]
    assert import_words[2:] == ["reset", "on", f"#{digest}", "~*", "+ping", "+flushall", "+restore"]
    for job, name in (("control", "recluster-internal"), ("replication", "recluster-replication"),
                      ("sentinel", "recluster-sentinel")):
        words = [w.strip('"') for w in users[name].split()]
        assert words[2:5] == ["reset", "on", f"#{digest}"]
        assert tuple(words[5:]) == JOB_PERMISSIONS[job]  # nothing more: no key pattern, no +@all
        assert not any(w in ("+@all", "~*", "allkeys", "allcommands") for w in words)
    assert ('masteruser "recluster-replication"' in conf) and (f'masterauth "{INTERNAL}"' in conf)
    assert INTERNAL not in "\n".join(users.values())  # only its hash
    assert ("user default off" in conf) is (not default_user)
    # the database's password still opens the default user (when on), and nothing else
    assert f'requirepass "{DB_PASSWORD}"' in conf
    others = [line for line in conf.splitlines() if not line.startswith("requirepass")]
    assert DB_PASSWORD not in "\n".join(others)


def test_a_database_made_before_the_job_users_keeps_its_older_logins(tmp_path: Path) -> None:
    on, off = _bdb(True, internal_password=""), _bdb(False, internal_password="")
    assert on.login("replication") == (None, DB_PASSWORD) and on.login("sentinel") == (None, DB_PASSWORD)
    assert off.login("control") == ("recluster-internal", DB_PASSWORD)
    assert internal_users(on) == internal_users(off) == ()
    conf_on, conf_off = _config(on, tmp_path), _config(off, tmp_path)
    assert "masteruser" not in conf_on and not _user_lines(conf_on)
    assert 'masteruser "recluster-internal"' in conf_off
    assert "+@all" in _user_lines(conf_off)["recluster-internal"]


@given(tail=st.text(max_size=40))
def test_the_internal_password_is_never_shown(tail: str) -> None:
    password = f"internal-{tail}"  # not by chance equal to another field's value
    for default_user in (True, False):
        bdb = _bdb(default_user, internal_password=password)
        cluster = ClusterRecord(name="c", created_time="t", username="u", password_hash="h")
        state = ClusterState(cluster=cluster, bdbs={bdb.uid: bdb})
        view = bdb_view(state, bdb, EngineTable.of([Engine("redis", 7, 0, 15, "/usr/bin/redis-server")]))
        assert "internal_password" not in view
        assert password not in {str(v) for v in view.values()}
