"""The engine table: versions from the binaries' banners, the default (newest Redis), and the rules a
bdb's `redis_version` follows (unknown -> 400 naming the versions; a change refused for now)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recluster.api.engine_versions import normalize_version
from recluster.node.engines import (
    Engine,
    EngineTable,
    UnknownVersion,
    candidate_paths,
    discover,
    engine_of_info,
    parse_banner,
)
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState, NodeRecord
from recluster.node.request_models import BdbCreate, BdbUpdate
from recluster.node.validation import new_bdb, updated_bdb

pytestmark = pytest.mark.unit

R80 = Engine("redis", 8, 0, 2, "/usr/bin/redis-server")
R70 = Engine("redis", 7, 0, 15, "/opt/engines/redis-7.0/bin/redis-server")
VK81 = Engine("valkey", 8, 1, 1, "/usr/bin/valkey-server")
TABLE = EngineTable.of([VK81, R70, R80])


@pytest.mark.parametrize(("banner", "engine"), [
    ("Redis server v=8.0.2 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=b843bbd074c0e1da",
     ("redis", "8.0")),
    ("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0",
     ("redis", "7.0")),
    ("Valkey server v=8.1.1 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=384b3c0d511f998a",
     ("valkey", "valkey-8.1")),
    ("Redis server v=10.12.1 sha=0", ("redis", "10.12")),
    ("something else", None),
    ("", None),
])
def test_banner(banner: str, engine: tuple[str, str] | None) -> None:
    found = parse_banner(banner, "/x")
    assert (None if found is None else (found.db_type, found.version)) == engine


def test_table_order_and_default_is_the_newest_redis() -> None:
    assert TABLE.versions() == ["8.0", "7.0", "valkey-8.1"]
    assert TABLE.default() == R80
    assert EngineTable.of([VK81]).default() == VK81
    assert EngineTable.of([]).default() is None


def test_the_first_binary_of_a_version_wins() -> None:
    other = Engine("redis", 8, 0, 5, "/elsewhere/redis-server")
    assert EngineTable.of([R80, other]).get("8.0") == R80


@pytest.mark.parametrize(("requested", "normal"), [
    ("8.0", "8.0"), ("redis-8.0", "8.0"), (" 7.0 ", "7.0"), ("Valkey-8.1", "valkey-8.1"),
    ("07.00", "7.0"), ("8", None), ("8.0.2", None), ("latest", None), ("valkey", None),
])
def test_normalize_version(requested: str, normal: str | None) -> None:
    assert normalize_version(requested) == normal


def test_resolve() -> None:
    assert TABLE.resolve(None) == R80
    assert TABLE.resolve("redis-7.0") == R70
    assert TABLE.resolve("valkey-8.1") == VK81
    with pytest.raises(UnknownVersion, match=r"'7\.4' is not a version.*supported: 8\.0, 7\.0, valkey-8\.1"):
        TABLE.resolve("7.4")
    with pytest.raises(UnknownVersion, match="no database engine"):
        EngineTable.of([]).resolve(None)


def test_supported_database_versions_shape() -> None:
    assert TABLE.supported() == [{"db_type": "redis", "version": "8.0"},
                                 {"db_type": "redis", "version": "7.0"},
                                 {"db_type": "valkey", "version": "8.1"}]


def test_candidates_configured_or_discovered() -> None:
    assert candidate_paths("/usr/bin/redis-server", ["/a", "/b"]) == ["/a", "/b"]
    assert candidate_paths("/my/redis-server", [])[0] == "/my/redis-server"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server here")
def test_discover_on_this_machine(tmp_path: Path) -> None:
    fake = tmp_path / "valkey-server"
    fake.write_text("#!/bin/sh\necho 'Valkey server v=8.1.1 sha=0 bits=64'\n")
    fake.chmod(0o755)
    table = discover(str(shutil.which("redis-server")), (str(shutil.which("redis-server")), str(fake),
                                                          str(tmp_path / "missing")))
    assert table.engines[0].db_type == "redis" and table.engines[-1] == Engine("valkey", 8, 1, 1, str(fake))
    assert len(table.engines) == 2


def _state() -> ClusterState:
    return ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"))


def test_new_bdb_gets_the_default_or_the_asked_version() -> None:
    st = _state()
    assert new_bdb(st, BdbCreate(name="a", memory_size=1), "now", TABLE).redis_version == "8.0"
    asked = BdbCreate(name="a", memory_size=1, redis_version="7.0")
    assert new_bdb(st, asked, "now", TABLE).redis_version == "7.0"
    assert new_bdb(st, BdbCreate(name="a", memory_size=1, redis_version="Valkey-8.1"), "now",
                   TABLE).redis_version == "valkey-8.1"


def test_new_bdb_with_an_unknown_version_is_a_400_naming_the_field_and_the_versions() -> None:
    with pytest.raises(ApiError) as err:
        new_bdb(_state(), BdbCreate(name="a", memory_size=1, redis_version="6.2"), "now", TABLE)
    assert err.value.status == 400 and err.value.field == "redis_version"
    assert "'redis_version'" in err.value.message and "8.0, 7.0, valkey-8.1" in err.value.message


def _replicated(version: str) -> tuple[ClusterState, BdbRecord]:
    st = _state()
    for uid in (1, 2, 3):
        st.nodes[uid] = NodeRecord(uid=uid, name=f"n{uid}", addr=f"127.0.0.{uid}", api_port=9443,
                                   ccs_port=3355, sentinel_port=8001, metrics_port=8070)
    bdb = new_bdb(st, BdbCreate(name="a", memory_size=1, redis_version=version, replication=True), "now",
                  TABLE)
    bdb.status = "active"
    st.bdbs[bdb.uid] = bdb
    return st, bdb


def test_raising_the_version_of_a_replicated_database_targets_the_new_one() -> None:
    st, bdb = _replicated("7.0")
    merged = updated_bdb(st, bdb, BdbUpdate(redis_version="redis-8.0"), "later", TABLE)
    assert merged.redis_version == "8.0" and merged.status == "active-change-pending"
    assert bdb.redis_version == "7.0"  # the record it was given is not changed
    # the same version (in any spelling) is no change
    assert updated_bdb(st, bdb, BdbUpdate(redis_version="redis-7.0"), "later", TABLE) is bdb


@pytest.mark.parametrize(("old", "new", "replication", "words"), [
    ("8.0", "7.0", True, "a downgrade to 7.0 is refused: replicas on the older engine cannot read"),
    ("7.0", "valkey-8.1", True, "changing it to valkey-8.1 is refused: Redis and Valkey are different"),
    ("7.0", "8.0", False, "upgrading from 7.0 to 8.0 needs a replica"),
])
def test_a_change_made_not_in_place_is_a_400_naming_the_field_and_why(
        old: str, new: str, replication: bool, words: str) -> None:
    st, bdb = _replicated(old)
    bdb.replication = replication
    with pytest.raises(ApiError) as err:
        updated_bdb(st, bdb, BdbUpdate(redis_version=new), "later", TABLE)
    assert err.value.status == 400 and err.value.field == "redis_version"
    assert err.value.message.startswith("'redis_version': ") and words in err.value.message
    assert "nothing was changed" in err.value.message
    assert bdb.redis_version == old and bdb.status == "active"


def test_turning_replication_off_with_an_upgrade_is_refused() -> None:
    st, bdb = _replicated("7.0")
    with pytest.raises(ApiError, match="needs a replica"):
        updated_bdb(st, bdb, BdbUpdate(redis_version="8.0", replication=False), "later", TABLE)


def test_an_unknown_version_names_the_ones_there_are() -> None:
    st, bdb = _replicated("7.0")
    with pytest.raises(ApiError, match=r"supported: 8\.0, 7\.0"):
        updated_bdb(st, bdb, BdbUpdate(redis_version="9.9"), "later", TABLE)


def test_a_change_while_an_upgrade_runs_is_busy() -> None:
    st, bdb = _replicated("8.0")
    bdb.upgrade_from, bdb.status = "7.0", "active-change-pending"
    with pytest.raises(ApiError) as err:
        updated_bdb(st, bdb, BdbUpdate(memory_size=2), "later", TABLE)
    assert err.value.status == 409 and "upgrading its engine from 7.0 to 8.0" in err.value.message


def test_the_rdb_line_of_each_engine() -> None:
    """Backups compare RDB formats by Redis line: Valkey 8 writes and reads Redis 7.2's (11)."""
    assert (R80.rdb_line, R70.rdb_line, VK81.rdb_line) == ("8.0.2", "7.0.15", "7.2")


def test_what_a_running_server_is_from_its_info() -> None:
    """Valkey's INFO also says redis_version 7.2.4: valkey_version decides."""
    assert engine_of_info({"redis_version": "8.0.2"}) == "8.0"
    assert engine_of_info({"redis_version": "7.0.15"}) == "7.0"
    assert engine_of_info({"redis_version": "7.2.4", "valkey_version": "8.1.1"}) == "valkey-8.1"
    assert engine_of_info({}) == ""
