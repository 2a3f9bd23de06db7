"""REDB `spec.backup` (Redis Enterprise's shape): scheduled backups of the database, run by the cluster.
Pure: the spec model, its rules, and the bdb fields it becomes once the Secret's keys are read.

    backup:
      interval: 24                  # hours between backups (Redis Enterprise's unit)
      s3:
        awsSecretName: orders-keys  # Secret: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, ca_cert]
        bucketName: backups
        subdir: prod
        endpointUrl: https://s3.example:9000   # recluster's: an S3-compatible store (path-style)
        region: us-east-1                      # recluster's: the store's region
      # or
      mount:
        path: /mnt/backups

Redis Enterprise's other destinations (gcs, abs, sftp, swift, ftp) are refused by name until built."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from recluster.api.backup import parse_destination
from recluster.api.field_errors import DNS1123_SUBDOMAIN, FieldError, SpecInvalid
from recluster.api.redb import RedbBackup

HOUR_S = 3600
MAX_INTERVAL_HOURS = 24 * 7 * 4  # four weeks: a longer gap is not a schedule anyone relies on
# Redis Enterprise's Secret keys for S3 first, the restore annotation's (and the REST API's) second
ACCESS_KEY_NAMES = ("AWS_ACCESS_KEY_ID", "access_key_id")
SECRET_KEY_NAMES = ("AWS_SECRET_ACCESS_KEY", "secret_access_key")
CA_KEY_NAMES = ("ca_cert", "CA_CERT")
NOT_BUILT_DESTINATIONS = {
    "gcs": "Google Cloud Storage", "abs": "Azure Blob Storage", "sftp": "SFTP", "swift": "OpenStack Swift",
    "ftp": "FTP/S",
}
BUILT_DESTINATIONS = ("s3", "mount")


def backup_errors(backup: RedbBackup | None) -> list[FieldError]:
    """Every broken rule of `spec.backup`, each naming its field. An empty block asks for nothing."""
    if backup is None or not backup.model_fields_set:
        return []
    errors: list[FieldError] = []
    if not 1 <= backup.interval <= MAX_INTERVAL_HOURS:
        errors.append(FieldError("spec.backup.interval", "interval",
                                 f"must be a whole number of hours from 1 to {MAX_INTERVAL_HOURS} "
                                 f"(got {backup.interval})"))
    for name, what in NOT_BUILT_DESTINATIONS.items():
        if getattr(backup, name) is not None:
            errors.append(FieldError(f"spec.backup.{name}", "not-implemented",
                                     f"backups to {what} are not built yet: use "
                                     f"{' or '.join(BUILT_DESTINATIONS)}"))
    given = [name for name in BUILT_DESTINATIONS if getattr(backup, name) is not None]
    if len(given) != 1 and not errors:
        errors.append(FieldError("spec.backup", "one-destination",
                                 "name exactly one destination: s3 or mount" if not given
                                 else f"name one destination, not {' and '.join(given)}"))
    if backup.s3 is not None:
        secret = backup.s3.aws_secret_name
        if len(secret) > 253 or not DNS1123_SUBDOMAIN.match(secret):
            errors.append(FieldError("spec.backup.s3.awsSecretName", "name",
                                     f"{secret!r} is not a valid Secret name"))
        # the location's own rules (bucket name, subdir, endpoint), with stand-in keys
        errors += _location_errors(location_of(backup, "placeholder", "placeholder", None), "spec.backup.s3")
    if backup.mount is not None:
        errors += _location_errors(location_of(backup, None, None, None), "spec.backup.mount")
    return errors


_SPEC_NAMES = {"bucket_name": "bucketName", "endpoint_url": "endpointUrl", "region_name": "region",
               "subdir": "subdir", "path": "path"}


def _location_errors(location: dict[str, Any] | None, where: str) -> list[FieldError]:
    """The location rules of api/backup.py, their fields and messages in the spec's names."""
    if location is None:
        return []
    try:
        parse_destination(location, where)
    except SpecInvalid as invalid:
        errors = []
        for error in invalid.errors:
            key = error.field.rsplit(".", 1)[-1]
            name = _SPEC_NAMES.get(key, key)
            errors.append(FieldError(f"{where}.{name}", error.rule, error.message.replace(key, name)))
        return errors
    return []


def location_of(backup: RedbBackup, access_key_id: str | None, secret_access_key: str | None,
                ca_cert: str | None) -> dict[str, Any] | None:
    """The bdb's `backup_location` (Redis Enterprise's location object) for the spec's destination,
    with the keys read from the Secret; None without a built destination."""
    if backup.mount is not None:
        return {"type": "mount_point", "path": backup.mount.path}
    if backup.s3 is None:
        return None
    location: dict[str, Any] = {"type": "s3", "bucket_name": backup.s3.bucket_name,
                                "subdir": backup.s3.subdir, "access_key_id": access_key_id,
                                "secret_access_key": secret_access_key}
    if backup.s3.endpoint_url:
        location["endpoint_url"] = backup.s3.endpoint_url
    if backup.s3.region:
        location["region_name"] = backup.s3.region
    if ca_cert:
        location["ca_cert"] = ca_cert
    return location


def secret_keys(data: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(access key id, secret access key, CA) from a Secret's decoded data, by Redis Enterprise's key
    names or the lower-case ones."""
    def first(names: tuple[str, ...]) -> str | None:
        return next((data[name] for name in names if data.get(name)), None)

    return first(ACCESS_KEY_NAMES), first(SECRET_KEY_NAMES), first(CA_KEY_NAMES)


def location_digest(location: dict[str, Any] | None) -> str:
    """A digest of a whole location, keys included: the cluster shows it in place of the location
    (which holds the secret key), so the operator can tell whether the one stored is the one it
    would send (a rotated key too) without the secret ever being shown. SHA-256 of the canonical JSON."""
    if not location:
        return ""
    return hashlib.sha256(json.dumps(location, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def bdb_backup_fields(backup: RedbBackup | None, location: dict[str, Any] | None) -> dict[str, Any]:
    """The bdb fields of the REST API (Redis Enterprise's): `backup`, `backup_interval` in seconds,
    `backup_location` (with its keys)."""
    if backup is None or location is None:
        return {"backup": False}
    return {"backup": True, "backup_interval": backup.interval * HOUR_S, "backup_location": location}
