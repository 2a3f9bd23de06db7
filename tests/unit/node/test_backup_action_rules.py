"""Which export or import may start (node/backup_actions.py): a database that exists, is active and
runs neither here; a status left by a former leader does not block; an import's body is checked
field by field before anything starts."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.node import backup_actions
from recluster.node.backup_actions import ImportRequest, _bdb_for_work, _claim, _import_source
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState

pytestmark = pytest.mark.unit

S3 = {"type": "s3", "bucket_name": "backups", "access_key_id": "AKID", "secret_access_key": "the-secret"}


def state(**bdb_fields: Any) -> ClusterState:
    fields: dict[str, Any] = {"status": "active", **bdb_fields}
    bdb = BdbRecord(uid=4, name="db", memory_size=100 << 20, port=12000, replication=True,
                    data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                    eviction_policy="volatile-lru", **fields)
    return ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"),
                        bdbs={4: bdb})


def refusal(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def test_a_status_left_by_a_former_leader_does_not_block() -> None:
    left = state(export_status="exporting", export_progress=50, import_status="importing")
    assert _bdb_for_work(left, 4, set()).uid == 4


def test_work_running_here_or_a_database_not_active_is_refused() -> None:
    busy = refusal(lambda: _bdb_for_work(state(), 4, {(4, "import")}))
    assert (busy.status, busy.message) == (409, "database 4 is importing already; wait for it to end")
    assert refusal(lambda: _bdb_for_work(state(status="pending"), 4, set())).status == 409
    assert refusal(lambda: _bdb_for_work(state(), 9, set())).status == 404


def test_one_claim_at_a_time_per_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_actions, "_WORKING", set())
    _claim(4, "export")
    busy = refusal(lambda: _claim(4, "import"))
    assert busy.message == "database 4 is exporting already; wait for it to end"
    _claim(5, "import")  # another database


@pytest.mark.parametrize(("sources", "field"), [
    ([S3], "dataset_import_sources[0].filename"),
    ([{**S3, "filename": "../etc/manifest.json"}], "dataset_import_sources[0].filename"),
    ([{**S3, "type": "gs", "filename": "x.rdb"}], "dataset_import_sources[0].type"),
    ([{**S3, "bucket_name": "", "filename": "x.rdb"}], "dataset_import_sources[0].bucket_name"),
    ([{**S3, "filename": "a.rdb"}, {**S3, "filename": "b.rdb"}], "dataset_import_sources"),
])
def test_an_import_body_is_checked_field_by_field(sources: list[dict[str, Any]], field: str) -> None:
    error = refusal(lambda: _import_source(ImportRequest(dataset_import_sources=sources)))
    assert (error.status, error.field) == (400, field)
    assert "the-secret" not in error.message


def test_a_good_import_source() -> None:
    destination, filename = _import_source(ImportRequest(dataset_import_sources=[
        {**S3, "filename": "/prod/db/20261207T120000Z/manifest.json"}]))
    assert filename == "prod/db/20261207T120000Z/manifest.json" and destination.bucket_name == "backups"
