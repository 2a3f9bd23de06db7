"""The pure parts of backups (api/backup.py): location objects, the manifest, RDB headers, engine
compatibility, the schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.backup import (
    BackupError,
    Manifest,
    MountDestination,
    S3Destination,
    ShardFile,
    backup_dir,
    check_file,
    check_loadable,
    engine_rdb_version,
    manifest_from_json,
    next_backup,
    parse_destination,
    rdb_version,
    redacted,
)
from recluster.api.field_errors import SpecInvalid

pytestmark = pytest.mark.unit

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3 = {"type": "s3", "bucket_name": "backups", "access_key_id": "AKID", "secret_access_key": SECRET}


def errors(body: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecInvalid) as caught:
        parse_destination(body)
    assert SECRET not in str(caught.value)
    return [(e.field, e.rule) for e in caught.value.errors]


def test_s3_location_in_redis_enterprise_shape_with_endpoint_and_ca() -> None:
    body = {**S3, "subdir": "/prod/db1/", "region_name": "eu-west-1", "endpoint_url": "https://198.18.16.1:9000/",
            "ca_cert": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"}
    got = parse_destination(body)
    assert got == S3Destination("backups", "AKID", SECRET, "prod/db1", "eu-west-1", "https://198.18.16.1:9000",
                                body["ca_cert"])
    assert SECRET not in repr(got)
    mount = parse_destination({"type": "mount_point", "path": "/mnt/backups/"})
    assert mount == MountDestination("/mnt/backups")


@pytest.mark.parametrize(("kind", "name"), [("gs", "Google Cloud Storage"), ("abs", "Azure Blob Storage"),
                                            ("sftp", "SFTP"), ("url", "FTP/S")])
def test_other_destination_types_are_refused_by_name(kind: str, name: str) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_destination({"type": kind})
    assert caught.value.errors[0].field == "export_location.type"
    assert f"type {kind!r} ({name}) is not supported yet; use one of s3, mount_point" in str(caught.value)


def test_every_broken_rule_is_named() -> None:
    assert errors({"type": "s3"}) == [("export_location.bucket_name", "required"),
                                      ("export_location.access_key_id", "required"),
                                      ("export_location.secret_access_key", "required")]
    assert errors({**S3, "bucket_name": "Bad_Bucket", "subdir": "a/../b", "endpoint_url": "ftp://x/y",
                   "ca_cert": "nope"}) == [
        ("export_location.bucket_name", "bucket_name"), ("export_location.subdir", "subdir"),
        ("export_location.endpoint_url", "url"), ("export_location.ca_cert", "pem")]
    assert errors({"type": "mount_point", "path": "relative"}) == [("export_location.path", "absolute_path")]
    assert errors({"type": "nfs"}) == [("export_location.type", "enum")]
    assert errors([]) == [("export_location", "type")]
    assert errors({**S3, "access_key_id": 5}) == [("export_location.access_key_id", "type")]


@given(st.dictionaries(st.sampled_from(["type", "bucket_name", "access_key_id", "secret_access_key", "subdir",
                                        "region_name", "endpoint_url", "ca_cert", "path"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                 st.sampled_from(["s3", "mount_point", "gs", "/mnt/x", "backups", SECRET]))))
def test_parsing_any_body_gives_a_destination_or_named_errors_never_the_secret(body: dict[str, Any]) -> None:
    try:
        got = parse_destination(body)
    except SpecInvalid as exc:
        assert exc.errors and all(e.field.startswith("export_location") and e.message for e in exc.errors)
        assert SECRET not in str(exc)
    else:
        assert isinstance(got, S3Destination | MountDestination)
        assert SECRET not in repr(got)


def test_redacted_hides_the_secret_key() -> None:
    assert redacted(S3) == {**S3, "secret_access_key": "********"}


def shard(index: int, **changes: Any) -> ShardFile:
    fields = {"index": index, "slots": "0-16383", "name": f"shard-{index}.rdb", "size": 10,
              "sha256": "ab" * 32, "rdb_version": 10}
    fields.update(changes)
    return ShardFile(**fields)


MANIFEST = Manifest(3, "orders", "7.0.15", "2026-12-07T13:00:00+00:00",
                    (shard(1, slots="0-8191"), shard(2, slots="8192-16383")))


def test_manifest_round_trips_and_says_count_and_size() -> None:
    raw = MANIFEST.to_json()
    assert manifest_from_json(raw) == MANIFEST
    data = json.loads(raw)
    assert (data["shard_count"], data["total_size"], data["bdb_name"]) == (2, 20, "orders")


@pytest.mark.parametrize(("change", "message"), [
    ({"format": 2}, "manifest format 2 is not 1"),
    ({"shards": []}, "lists no shard file"),
    ({"shard_count": 3}, "says 3 shards but lists 2"),
    ({"bdb_uid": None}, "lacks or mistypes"),
])
def test_a_broken_manifest_is_named(change: dict[str, Any], message: str) -> None:
    data = {**json.loads(MANIFEST.to_json()), **change}
    with pytest.raises(BackupError, match=message):
        manifest_from_json(json.dumps(data).encode())
    with pytest.raises(BackupError, match="not JSON"):
        manifest_from_json(b"{truncated")
    escaping = {**json.loads(MANIFEST.to_json())}
    escaping["shards"][0]["name"] = "../../etc/passwd"
    with pytest.raises(BackupError, match="outside the backup"):
        manifest_from_json(json.dumps(escaping).encode())


def test_rdb_headers_and_engine_compatibility() -> None:
    assert rdb_version(b"REDIS0010\xfa") == 10
    for bad in (b"", b"REDIS", b"HELLO0010", b"REDISabcd"):
        with pytest.raises(BackupError, match="not an RDB file"):
            rdb_version(bad)
    versions = ("7.0.15", "7.2.4", "7.4.1", "8.0.0", "9.1.0")
    assert [engine_rdb_version(v) for v in versions] == [10, 11, 12, 12, 12]
    check_loadable(MANIFEST, "7.2.4")
    newer = Manifest(3, "orders", "7.4.1", "t", (shard(1, rdb_version=12),))
    with pytest.raises(BackupError, match=r"made by engine 7\.4\.1 \(RDB format 12\); this database runs "
                                          r"7\.0\.15, which reads RDB formats up to 10"):
        check_loadable(newer, "7.0.15")


def test_a_downloaded_file_must_match_the_manifest() -> None:
    check_file(shard(1), 10, "ab" * 32)
    with pytest.raises(BackupError, match=r"shard-1\.rdb is truncated or grown: 9 bytes, the manifest says"):
        check_file(shard(1), 9, "ab" * 32)
    with pytest.raises(BackupError, match=r"shard-1\.rdb is corrupt"):
        check_file(shard(1), 10, "cd" * 32)


def test_backup_directories_sort_by_time() -> None:
    first = backup_dir("/prod/", "orders", datetime(2026, 12, 7, 9, 5, tzinfo=UTC))
    assert first == "prod/orders/20261207T090500Z/"
    assert backup_dir("prod", "orders", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)) > first
    assert backup_dir("", "orders", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)) == "orders/20261207T100000Z/"


NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_schedule_runs_at_creation_then_every_interval() -> None:
    assert next_backup(1, None, NOW, 0, None) == NOW
    assert next_backup(1, NOW, NOW - timedelta(days=1), 0, None) == NOW + timedelta(hours=1)


@given(st.floats(min_value=0.5, max_value=24 * 7), st.integers(min_value=1, max_value=200))
def test_retries_after_failure_double_and_never_exceed_the_interval(interval: float, failures: int) -> None:
    at = next_backup(interval, NOW - timedelta(hours=3), NOW - timedelta(days=2), failures, NOW)
    assert NOW + timedelta(minutes=1) <= at <= NOW + timedelta(hours=interval)
    if failures > 1:
        assert next_backup(interval, None, NOW, failures - 1, NOW) <= at
