"""REDB `spec.backup` -> the bdb's scheduled backups (operator/redb/backup.py): the fields sent with
the Secret's keys, the update compared by digest (the cluster never shows the location), the status's
backupInfo and the Warning a new failure gets."""

from __future__ import annotations

from typing import Any

import pytest

from recluster.api.redb import RedisEnterpriseDatabase
from recluster.api.redb_backup import location_digest
from recluster.operator.redb.backup import backup_info, backup_update, failure_event, wanted_backup

pytestmark = pytest.mark.unit
SECRET = "the-s3-secret"
KEYS = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": SECRET}


def redb(backup: Any) -> RedisEnterpriseDatabase:
    return RedisEnterpriseDatabase.model_validate({
        "metadata": {"name": "orders", "namespace": "ns"},
        "spec": {"backup": backup} if backup is not None else {}})


S3 = {"interval": 2, "s3": {"awsSecretName": "keys", "bucketName": "backups", "subdir": "prod",
                            "endpointUrl": "http://198.18.0.1:9000"}}


def test_the_fields_carry_the_keys_and_seconds() -> None:
    fields, missing = wanted_backup(redb(S3), KEYS)
    assert missing == ""
    assert fields["backup"] is True and fields["backup_interval"] == 7200
    assert fields["backup_location"]["secret_access_key"] == SECRET
    assert fields["backup_location"]["endpoint_url"] == "http://198.18.0.1:9000"
    assert wanted_backup(redb(None), None) == ({"backup": False}, "")
    mount, _ = wanted_backup(redb({"interval": 1, "mount": {"path": "/mnt/b"}}), None)
    assert mount["backup_location"] == {"type": "mount_point", "path": "/mnt/b"}


def test_a_missing_secret_or_key_is_named_without_values() -> None:
    assert wanted_backup(redb(S3), None) == ({}, "waiting for the backup credentials: Secret keys does not "
                                                 "exist (backup.s3.awsSecretName)")
    fields, missing = wanted_backup(redb(S3), {"AWS_ACCESS_KEY_ID": "AKID"})
    assert fields == {} and "AWS_SECRET_ACCESS_KEY" in missing and "AKID" not in missing


def test_the_update_compares_the_location_by_digest() -> None:
    fields, _ = wanted_backup(redb(S3), KEYS)
    shown = {"backup": True, "backup_interval": 7200,
             "backup_location_digest": location_digest(fields["backup_location"])}
    assert backup_update(fields, shown) == {}
    rotated, _ = wanted_backup(redb(S3), {**KEYS, "AWS_SECRET_ACCESS_KEY": "rotated"})
    assert set(backup_update(rotated, shown)) == {"backup_location"}
    assert backup_update(fields, {**shown, "backup_interval": 3600}) == {"backup_interval": 7200}
    assert backup_update({"backup": False}, shown) == {"backup": False}
    assert backup_update({"backup": False}, {"backup": False}) == {}
    assert backup_update({}, shown) == {}  # the Secret is missing: nothing is changed


def test_backup_info_and_the_failure_warning() -> None:
    assert backup_info({"backup": False}) is None
    ok = {"backup": True, "backup_status": "succeeded", "last_backup_time": "2026-12-07T12:00:00Z",
          "next_backup_time": "2026-12-07T14:00:00+00:00", "backup_failures": 0}
    assert backup_info(ok) == {"backupStatus": "succeeded", "lastBackupTime": "2026-12-07T12:00:00Z",
                               "nextBackupTime": "2026-12-07T14:00:00+00:00", "failuresSinceLastSuccess": 0}
    failed = {**ok, "backup_status": "failed", "last_backup_failure_time": "2026-12-07T13:00:00Z",
              "backup_failure_reason": "no-permission", "backup_failure_message": "the keys were refused",
              "backup_failures": 2}
    info = backup_info(failed)
    message = failure_event({}, info)
    assert message is not None and "no-permission" in message and "the keys were refused" in message
    assert failure_event({"backupInfo": info}, info) is None  # already shown: no second Warning
    assert failure_event({}, backup_info(ok)) is None
