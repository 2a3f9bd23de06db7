"""The scheduled backups' decisions (node/backup_schedule.py): what a create or update writes, the
secret key sealed and never stored readable, and which databases are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.backup import S3Destination
from recluster.node.acl_secrets import AclSecrets, backup_key_seal
from recluster.node.backup_schedule import (
    SEALED,
    backup_fields,
    due_backups,
    next_backup_time,
    unsealed,
)
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState

pytestmark = pytest.mark.unit
SECRET = "s3-secret-key-never-stored-readable"
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def seal(text: str) -> str:
    return text[::-1]  # a stand-in: reversible, and not the text


def opened(text: str) -> str | None:
    return text[::-1]


def location(**changes: Any) -> dict[str, Any]:
    return {"type": "s3", "bucket_name": "backups", "access_key_id": "AKID", "secret_access_key": SECRET,
            **changes}


def iso(when: datetime) -> str:
    return when.isoformat()


def bdb(**fields: Any) -> BdbRecord:
    record = BdbRecord(uid=1, name="db", memory_size=1, port=10000, replication=True,
                       data_persistence="disabled", aof_policy="appendfsync-every-sec", snapshot_policy=[],
                       eviction_policy="noeviction", status="active", created_time=iso(T0))
    return record.model_copy(update=fields)


def enabled(**extra: Any) -> BdbRecord:
    return bdb(**{**backup_fields(None, True, 3600, location(), iso(T0), seal), **extra})


def test_create_seals_the_key_and_starts_the_schedule_at_once() -> None:
    fields = backup_fields(None, True, 3600, location(), iso(T0), seal)
    assert SECRET not in str(fields)
    assert fields["backup_location"]["secret_access_key"] == SEALED + seal(SECRET)
    assert fields["backup_since"] == iso(T0) and fields["backup_interval"] == 3600
    record = bdb(**fields)
    assert unsealed(record, opened) == S3Destination("backups", "AKID", SECRET)
    assert next_backup_time(record) == T0


def test_rules_name_the_field() -> None:
    with pytest.raises(ApiError) as refused:
        backup_fields(None, True, None, None, iso(T0), seal)
    assert refused.value.field == "backup_location"
    with pytest.raises(ApiError) as refused:
        backup_fields(None, True, None, location(type="gs"), iso(T0), seal)
    assert refused.value.field == "backup_location.type" and SECRET not in str(refused.value)
    assert backup_fields(None, None, None, None, iso(T0), seal) == {}


def test_a_key_this_cluster_cannot_open_is_named() -> None:
    with pytest.raises(ApiError, match="set backup_location again"):
        unsealed(enabled(), lambda _: None)


def test_an_update_of_the_interval_keeps_the_schedule_a_new_destination_restarts_it() -> None:
    record = enabled(last_backup_time=iso(T0 + timedelta(minutes=1)))
    later = iso(T0 + timedelta(hours=5))
    assert backup_fields(record, None, 7200, None, later, seal) == {"backup_interval": 7200}
    same = backup_fields(record, None, None, location(), later, seal)
    assert same == {}  # the same location again: nothing changes
    moved = backup_fields(record, None, None, location(subdir="other"), later, seal)
    assert moved["backup_since"] == later and moved["backup_failures"] == 0
    rotated = backup_fields(record, None, None, location(secret_access_key="new-key"), later, seal)
    assert "backup_location" in rotated
    assert backup_fields(record, False, None, None, later, seal) == {"backup": False}


def test_retries_double_from_a_minute_and_never_exceed_the_interval() -> None:
    failed_at = T0 + timedelta(minutes=3)
    delays = [next_backup_time(enabled(backup_failures=n, last_backup_failure_time=iso(failed_at)))
              for n in (1, 2, 3, 10)]
    assert [d - failed_at for d in delays if d] == [timedelta(minutes=1), timedelta(minutes=2),
                                                    timedelta(minutes=4), timedelta(hours=1)]


def test_due_skips_running_inactive_and_disabled_databases() -> None:
    state = ClusterState(cluster=ClusterRecord(name="c", created_time="t", username="u", password_hash="h"))
    state.bdbs[1] = enabled()
    state.bdbs[2] = enabled(uid=2, status="pending")
    state.bdbs[3] = enabled(uid=3, backup=False)
    state.bdbs[4] = enabled(uid=4, last_backup_time=iso(T0 + timedelta(minutes=30)))
    state.bdbs[5] = enabled(uid=5)
    assert due_backups(state, T0 + timedelta(minutes=31), running=[5]) == [1]
    assert due_backups(state, T0 + timedelta(minutes=91), running=[]) == [1, 4, 5]
    # the test knob replaces every interval
    assert due_backups(state, T0 + timedelta(minutes=30, seconds=5), running=[], interval_override_s=5) \
        == [1, 4, 5]


@given(interval_h=st.integers(1, 48), success_min=st.one_of(st.none(), st.integers(-600, 6000)),
       failures=st.integers(0, 30), failed_min=st.integers(0, 6000))
def test_the_next_run_follows_from_the_state_alone(interval_h: int, success_min: int | None, failures: int,
                                                   failed_min: int) -> None:
    """Any leader computes the same next run from the state (it survives a leader change): never before
    the schedule started, at most an interval after the last success or failure."""
    success = iso(T0 + timedelta(minutes=success_min)) if success_min is not None else None
    failure = iso(T0 + timedelta(minutes=failed_min)) if failures else None
    record = enabled(backup_interval=interval_h * 3600, last_backup_time=success, backup_failures=failures,
                     last_backup_failure_time=failure)
    when = next_backup_time(record)
    assert when is not None and when >= T0
    interval = timedelta(hours=interval_h)
    if failures:
        assert when <= T0 + timedelta(minutes=failed_min) + interval
    elif success_min is not None and success_min >= 0:
        assert when == T0 + timedelta(minutes=success_min) + interval
    else:  # no success since the schedule started: at once
        assert when == T0
    assert next_backup_time(record.model_copy(update={"backup": False})) is None


def test_the_cluster_seals_backup_keys_apart_from_acl_passwords() -> None:
    seal_of = backup_key_seal("cluster-secret")
    sealed = seal_of.seal(SECRET)
    assert SECRET not in sealed and seal_of.open(sealed) == SECRET
    assert backup_key_seal("another-cluster").open(sealed) is None
    assert AclSecrets("cluster-secret").open(sealed) is None  # not an ACL password hash
