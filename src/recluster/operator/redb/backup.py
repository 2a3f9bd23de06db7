"""REDB `spec.backup` <-> the bdb's scheduled backups, the pure part: the bdb fields the spec asks for
(with the keys of its Secret), the update that brings a bdb in line, `status.backupInfo` from what the
cluster reports, and the Warning a new failure deserves. The cluster runs the schedule; the operator
only says what it is and reports how it goes. The secret key goes into the body sent to the cluster
and nowhere else: the cluster shows back only the location's digest, which is what is compared."""

from __future__ import annotations

from typing import Any

from recluster.api.redb import RedisEnterpriseDatabase
from recluster.api.redb_backup import bdb_backup_fields, location_digest, location_of, secret_keys


def wanted_backup(redb: RedisEnterpriseDatabase, secret: dict[str, str] | None) -> tuple[dict[str, Any], str]:
    """The bdb's backup fields for the spec, and what is missing ("" when nothing is): the Secret
    `s3.awsSecretName` names, or its keys. `secret`: that Secret's decoded data (None: not found)."""
    backup = redb.spec.backup
    if backup is None or not backup.model_fields_set or (backup.s3 is None and backup.mount is None):
        return {"backup": False}, ""
    if backup.s3 is not None:
        name = backup.s3.aws_secret_name
        if secret is None:
            return {}, (f"waiting for the backup credentials: Secret {name} does not exist "
                        "(backup.s3.awsSecretName)")
        key_id, key, ca = secret_keys(secret)
        if not key_id or not key:
            return {}, (f"waiting for the backup credentials: Secret {name} needs AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (backup.s3.awsSecretName)")
        return bdb_backup_fields(backup, location_of(backup, key_id, key, ca)), ""
    return bdb_backup_fields(backup, location_of(backup, None, None, None)), ""


def backup_update(wanted: dict[str, Any], bdb: dict[str, Any]) -> dict[str, Any]:
    """The backup fields of PUT /v1/bdbs/{uid} that differ ({} when the bdb is in line). The location
    is compared by its digest (the cluster never shows it)."""
    if not wanted:
        return {}
    changes: dict[str, Any] = {}
    if bool(bdb.get("backup")) != wanted["backup"]:
        changes["backup"] = wanted["backup"]
    if not wanted["backup"]:
        return changes
    if bdb.get("backup_interval") != wanted["backup_interval"]:
        changes["backup_interval"] = wanted["backup_interval"]
    if bdb.get("backup_location_digest") != location_digest(wanted["backup_location"]):
        changes["backup_location"] = wanted["backup_location"]
    return changes


_INFO = (("backupStatus", "backup_status"), ("lastBackupTime", "last_backup_time"),
         ("lastFailureTime", "last_backup_failure_time"), ("backupFailureReason", "backup_failure_reason"),
         ("backupFailureMessage", "backup_failure_message"), ("nextBackupTime", "next_backup_time"))


def backup_info(bdb: dict[str, Any]) -> dict[str, Any] | None:
    """`status.backupInfo`: the last success, the last failure and why, the next run (None while the
    database has no scheduled backups and never had one)."""
    info = {key: bdb[field] for key, field in _INFO if bdb.get(field) is not None}
    if not bdb.get("backup") and not info:
        return None
    info["failuresSinceLastSuccess"] = int(bdb.get("backup_failures") or 0)
    return info


def failure_event(old_status: dict[str, Any], info: dict[str, Any] | None) -> str | None:
    """The Warning message for a backup failure the status did not show yet (None: no new one)."""
    if not info or info.get("backupStatus") != "failed":
        return None
    previous = (old_status.get("backupInfo") or {}).get("lastFailureTime")
    if not info.get("lastFailureTime") or info["lastFailureTime"] == previous:
        return None
    return (f"scheduled backup failed ({info.get('backupFailureReason') or 'general-error'}): "
            f"{info.get('backupFailureMessage') or 'see the cluster'}; retry "
            f"{info.get('nextBackupTime') or 'soon'}")[:500]
