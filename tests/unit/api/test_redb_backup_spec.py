"""REDB `spec.backup`: its rules (each error names the field), and the bdb fields it becomes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recluster.api import validate_redb
from recluster.api.backup import parse_destination
from recluster.api.redb import RedbBackup
from recluster.api.redb_backup import (
    HOUR_S,
    backup_errors,
    bdb_backup_fields,
    location_digest,
    location_of,
    secret_keys,
)

pytestmark = pytest.mark.unit
SECRET = "s3-secret-never-shown"


def redb(backup: Any) -> dict[str, Any]:
    return {"apiVersion": "app.redislabs.com/v1alpha1", "kind": "RedisEnterpriseDatabase",
            "metadata": {"name": "orders", "namespace": "ns"}, "spec": {"backup": backup}}


def fields(backup: Any) -> set[tuple[str, str]]:
    return {(e.field, e.rule) for e in validate_redb(redb(backup), cluster_exists=True)}


S3 = {"awsSecretName": "orders-keys", "bucketName": "backups", "subdir": "prod",
      "endpointUrl": "https://s3.example:9000", "region": "eu-west-1"}


def test_s3_and_mount_destinations_are_valid() -> None:
    assert fields({"interval": 1, "s3": S3}) == set()
    assert fields({"interval": 24, "mount": {"path": "/mnt/backups"}}) == set()
    assert fields({}) == set()  # an empty block asks for nothing


@pytest.mark.parametrize(("backup", "expected"), [
    ({"interval": 0, "s3": S3}, ("spec.backup.interval", "interval")),
    ({"interval": 10000, "s3": S3}, ("spec.backup.interval", "interval")),
    ({"interval": 1}, ("spec.backup", "one-destination")),
    ({"interval": 1, "s3": S3, "mount": {"path": "/x"}}, ("spec.backup", "one-destination")),
    ({"interval": 1, "s3": {**S3, "bucketName": "Bad_Bucket"}}, ("spec.backup.s3.bucketName", "bucket_name")),
    ({"interval": 1, "s3": {**S3, "subdir": "a/../b"}}, ("spec.backup.s3.subdir", "subdir")),
    ({"interval": 1, "s3": {**S3, "endpointUrl": "ftp://x"}}, ("spec.backup.s3.endpointUrl", "url")),
    ({"interval": 1, "s3": {**S3, "awsSecretName": "Not A Name"}}, ("spec.backup.s3.awsSecretName", "name")),
    ({"interval": 1, "mount": {"path": "relative"}}, ("spec.backup.mount.path", "absolute_path")),
    ({"interval": 1, "gcs": {"gcsSecretName": "x"}}, ("spec.backup.gcs", "not-implemented")),
    ({"interval": 1, "abs": {"absSecretName": "x"}}, ("spec.backup.abs", "not-implemented")),
    ({"interval": 1, "sftp": {"sftpSecretName": "x"}}, ("spec.backup.sftp", "not-implemented")),
    ({"interval": 1, "swift": {"swiftSecretName": "x"}}, ("spec.backup.swift", "not-implemented")),
    ({"interval": 1, "ftp": {"ftpSecretName": "x"}}, ("spec.backup.ftp", "not-implemented")),
])
def test_each_broken_rule_names_its_field(backup: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in fields(backup)


def test_the_bdb_fields_carry_the_secret_keys_and_seconds() -> None:
    backup = RedbBackup.model_validate({"interval": 4, "s3": S3})
    location = location_of(backup, "AKID", SECRET, None)
    assert bdb_backup_fields(backup, location) == {
        "backup": True, "backup_interval": 4 * HOUR_S,
        "backup_location": {"type": "s3", "bucket_name": "backups", "subdir": "prod", "access_key_id": "AKID",
                            "secret_access_key": SECRET, "endpoint_url": "https://s3.example:9000",
                            "region_name": "eu-west-1"}}
    assert parse_destination(location, "backup_location").secret_access_key == SECRET
    mount = RedbBackup.model_validate({"mount": {"path": "/mnt/b"}})
    assert bdb_backup_fields(mount, location_of(mount, None, None, None))["backup_location"] == {
        "type": "mount_point", "path": "/mnt/b"}
    assert bdb_backup_fields(None, None) == {"backup": False}


def test_secret_keys_by_either_name() -> None:
    assert secret_keys({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}) == ("a", "s", None)
    assert secret_keys({"access_key_id": "a", "secret_access_key": "s", "ca_cert": "c"}) == ("a", "s", "c")
    assert secret_keys({}) == (None, None, None)


def test_the_digest_changes_with_the_key_and_never_holds_it() -> None:
    backup = RedbBackup.model_validate({"interval": 1, "s3": S3})
    one = location_digest(location_of(backup, "AKID", SECRET, None))
    assert one == location_digest(location_of(backup, "AKID", SECRET, None))
    assert one != location_digest(location_of(backup, "AKID", SECRET + "2", None))
    assert SECRET not in one and location_digest(None) == ""


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["interval", "s3", "mount", "gcs", "abs", "sftp", "swift", "ftp"]),
                       st.one_of(st.none(), st.integers(-5, 2000), st.text(max_size=12),
                                 st.fixed_dictionaries({}, optional={
                                     "awsSecretName": st.sampled_from(["k", "Bad Name", ""]),
                                     "bucketName": st.sampled_from(["backups", "B", ""]),
                                     "path": st.sampled_from(["/mnt", "rel", "/a/../b"]),
                                     "subdir": st.text(max_size=8)}))))
def test_any_backup_block_is_accepted_or_refused_naming_a_backup_field(backup: dict[str, Any]) -> None:
    errors = validate_redb(redb(backup), cluster_exists=True)
    assert all(e.field.startswith("spec.backup") and e.message for e in errors)
    if not errors:  # a valid block: at most one built destination, and its location parses
        model = RedbBackup.model_validate(backup)
        assert backup_errors(model) == []
        location = location_of(model, "AKID", SECRET, None)
        if location is not None:
            parse_destination(location, "backup_location")
            assert bdb_backup_fields(model, location)["backup_interval"] >= HOUR_S
