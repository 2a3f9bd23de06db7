"""Backups, export and import (issue 20), the pure parts: where a snapshot goes (Redis Enterprise's
backup/export location object), what is uploaded beside the RDB files (the manifest), whether an RDB
is whole and loadable by an engine, and when the next scheduled backup runs. No I/O here: the S3
adapter is clients/s3.py.

Location object (REST `export_location`, `backup_location`, an entry of `dataset_import_sources`):
- `{"type": "s3", "bucket_name", "subdir"?, "access_key_id", "secret_access_key", "region_name"?,
  "endpoint_url"?, "ca_cert"?}`: the last two are recluster's, for S3-compatible stores (Redis
  Enterprise sets them cluster-wide); an import source also names its `filename` (a manifest).
- `{"type": "mount_point", "path"}`: a directory mounted on the nodes.
Redis Enterprise's other types (url/ftp, sftp, gs, abs) are refused by name until built."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from recluster.api.field_errors import FieldError, SpecInvalid

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
RDB_MAGIC = b"REDIS"
# The RDB format each engine line writes; an engine loads formats up to its own.
RDB_VERSION_OF_ENGINE = {(6, 0): 9, (6, 2): 9, (7, 0): 10, (7, 2): 11, (7, 4): 12, (8, 0): 12, (8, 2): 12}
NOT_BUILT_TYPES = {
    "url": "FTP/S", "ftp": "FTP/S", "sftp": "SFTP", "gs": "Google Cloud Storage", "abs": "Azure Blob Storage",
}
BUILT_TYPES = ("s3", "mount_point")
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RETRY_FIRST = timedelta(minutes=1)


class BackupError(Exception):
    """A snapshot cannot be made, read or loaded; the message names the problem for a person, the
    reason is Redis Enterprise's word for the kind of failure (its *_failure_reason fields):
    no-permission, wrong-file-path, file-corrupted, general-error."""

    def __init__(self, message: str, reason: str = "general-error"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class S3Destination:
    bucket_name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    subdir: str = ""
    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    ca_cert: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MountDestination:
    path: str


Destination = S3Destination | MountDestination


def _text(body: dict[str, Any], key: str, where: str, errors: list[FieldError], required: bool) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            errors.append(FieldError(f"{where}.{key}", "required",
                                     f"{key} is required for type {body['type']!r}"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(f"{where}.{key}", "type", f"{key} must be a string"))
        return None
    return value


def parse_destination(body: Any, where: str = "export_location") -> Destination:
    """The destination a location object names, or SpecInvalid with every broken rule (field paths
    under `where`). Secrets never appear in a message."""
    if not isinstance(body, dict):
        raise SpecInvalid([FieldError(where, "type", "must be an object with a 'type'")])
    kind = body.get("type")
    if kind in NOT_BUILT_TYPES:
        raise SpecInvalid([FieldError(f"{where}.type", "not_supported",
                                      f"type {kind!r} ({NOT_BUILT_TYPES[kind]}) is not supported yet; "
                                      f"use one of {', '.join(BUILT_TYPES)}")])
    if kind not in BUILT_TYPES:
        shown = f" (got {kind!r})" if isinstance(kind, str) and re.match(r"^[a-z][a-z_]{0,15}$", kind) else ""
        raise SpecInvalid([FieldError(f"{where}.type", "enum",
                                      f"type must be one of {', '.join(BUILT_TYPES)}{shown}")])
    errors: list[FieldError] = []
    if kind == "mount_point":
        path = _text(body, "path", where, errors, required=True)
        if path is not None and (not path.startswith("/") or ".." in path.split("/")):
            errors.append(FieldError(f"{where}.path", "absolute_path",
                                     "path must be an absolute directory path without '..'"))
        if errors:
            raise SpecInvalid(errors)
        assert path is not None
        return MountDestination(path.rstrip("/") or "/")
    bucket = _text(body, "bucket_name", where, errors, required=True)
    if bucket is not None and not _BUCKET.match(bucket):
        errors.append(FieldError(f"{where}.bucket_name", "bucket_name",
                                 "bucket_name must be 3-63 lower-case letters, digits, '.' or '-', "
                                 "starting and ending with a letter or digit"))
    key_id = _text(body, "access_key_id", where, errors, required=True)
    secret = _text(body, "secret_access_key", where, errors, required=True)
    subdir = _text(body, "subdir", where, errors, required=False) or ""
    if ".." in subdir.split("/"):
        errors.append(FieldError(f"{where}.subdir", "subdir", "subdir must not hold '..'"))
    region = _text(body, "region_name", where, errors, required=False) or "us-east-1"
    endpoint = _text(body, "endpoint_url", where, errors, required=False)
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            errors.append(FieldError(f"{where}.endpoint_url", "url",
                                     "endpoint_url must be http(s)://host[:port] with no path"))
    ca = _text(body, "ca_cert", where, errors, required=False)
    if ca is not None and "-----BEGIN CERTIFICATE-----" not in ca:
        errors.append(FieldError(f"{where}.ca_cert", "pem", "ca_cert must be PEM certificates"))
    if errors:
        raise SpecInvalid(errors)
    assert bucket is not None and key_id is not None and secret is not None
    endpoint = endpoint.rstrip("/") if endpoint else None
    return S3Destination(bucket, key_id, secret, subdir.strip("/"), region, endpoint, ca)


def redacted(body: Any) -> Any:
    """A location object as it may be shown back or logged: the secret key replaced."""
    if not isinstance(body, dict):
        return body
    return {key: ("********" if key in ("secret_access_key", "key", "sftp_url", "url") and value else value)
            for key, value in body.items()}


def rdb_version(header: bytes) -> int:
    """The format version of an RDB file from its first 9 bytes ('REDIS' and 4 digits)."""
    if len(header) < 9 or header[:5] != RDB_MAGIC or not header[5:9].isdigit():
        raise BackupError("not an RDB file: it does not start with REDIS and a 4-digit format version",
                          "file-corrupted")
    return int(header[5:9])


def engine_rdb_version(engine_version: str) -> int:
    """The RDB format an engine of this version (e.g. '7.0.15') writes and, at most, reads."""
    match = re.match(r"^(\d+)\.(\d+)", engine_version)
    if match is None:
        raise BackupError(f"engine version {engine_version!r} is not major.minor[.patch]")
    line = (int(match.group(1)), int(match.group(2)))
    known = sorted(RDB_VERSION_OF_ENGINE)
    if line < known[0]:
        raise BackupError(f"engine version {engine_version} is older than any this cluster knows")
    return RDB_VERSION_OF_ENGINE[max(k for k in known if k <= line)]


@dataclass(frozen=True)
class ShardFile:
    """One shard's snapshot in a backup."""

    index: int  # 1-based, in slot order
    slots: str  # '0-8191'
    name: str  # object name, relative to the backup's directory
    size: int
    sha256: str
    rdb_version: int


@dataclass(frozen=True)
class Manifest:
    bdb_uid: int
    bdb_name: str
    engine_version: str
    created: str  # ISO 8601, UTC
    shards: tuple[ShardFile, ...]
    format: int = MANIFEST_FORMAT

    @property
    def shard_count(self) -> int:
        return len(self.shards)

    @property
    def total_size(self) -> int:
        return sum(shard.size for shard in self.shards)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["shard_count"] = self.shard_count
        data["total_size"] = self.total_size
        return json.dumps(data, indent=2, sort_keys=True).encode()


def manifest_from_json(raw: bytes) -> Manifest:
    """A manifest read back, or BackupError naming what is wrong with it."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BackupError("the manifest is not JSON") from None
    if not isinstance(data, dict):
        raise BackupError("the manifest is not a JSON object")
    if data.get("format") != MANIFEST_FORMAT:
        raise BackupError(f"manifest format {data.get('format')!r} is not {MANIFEST_FORMAT}, the one this "
                          "cluster reads")
    try:
        shards = tuple(
            ShardFile(int(s["index"]), str(s["slots"]), str(s["name"]), int(s["size"]), str(s["sha256"]),
                      int(s["rdb_version"]))
            for s in data["shards"]
        )
        manifest = Manifest(int(data["bdb_uid"]), str(data["bdb_name"]), str(data["engine_version"]),
                            str(data["created"]), shards)
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"the manifest lacks or mistypes {exc}") from None
    if not shards:
        raise BackupError("the manifest lists no shard file")
    if data.get("shard_count", len(shards)) != len(shards):
        raise BackupError(f"the manifest says {data['shard_count']} shards but lists {len(shards)}")
    if sorted(s.index for s in shards) != list(range(1, len(shards) + 1)):
        raise BackupError("the manifest's shard indexes are not 1..n")
    for shard in shards:
        if ".." in shard.name.split("/") or shard.name.startswith("/"):
            raise BackupError(f"the manifest names a file outside the backup: {shard.name!r}")
    return manifest


def check_loadable(manifest: Manifest, engine_version: str) -> None:
    """BackupError unless an engine of `engine_version` loads every RDB of the backup."""
    readable = engine_rdb_version(engine_version)
    newest = max(shard.rdb_version for shard in manifest.shards)
    if newest > readable:
        raise BackupError(
            f"the backup was made by engine {manifest.engine_version} (RDB format {newest}); this database "
            f"runs {engine_version}, which reads RDB formats up to {readable}: import into a database of "
            f"engine {manifest.engine_version} or newer", "file-corrupted")


def check_file(shard: ShardFile, size: int, sha256: str) -> None:
    """BackupError unless a downloaded file is the one the manifest describes."""
    if size != shard.size:
        raise BackupError(f"{shard.name} is truncated or grown: {size} bytes, the manifest says {shard.size}",
                          "file-corrupted")
    if sha256 != shard.sha256:
        raise BackupError(f"{shard.name} is corrupt: its sha256 {sha256[:12]}... is not the manifest's "
                          f"{shard.sha256[:12]}...", "file-corrupted")


def backup_dir(subdir: str, bdb_name: str, when: datetime) -> str:
    """The directory of one backup: <subdir>/<database name>/<UTC time>/ (one per snapshot, so a
    failed upload never overwrites a whole one and the latest is the last in name order)."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return "/".join(part for part in (subdir.strip("/"), bdb_name, stamp) if part) + "/"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def next_backup(interval_hours: float, last_success: datetime | None, created: datetime,
                failures: int, last_failure: datetime | None) -> datetime:
    """When the next scheduled backup runs: at once for a database that never had one, `interval`
    after the last success, and after failures a retry with doubling delays (1 min, 2, 4, ...)
    that never waits longer than the interval."""
    interval = timedelta(hours=interval_hours)
    if failures and last_failure is not None:
        delay: timedelta = min(_RETRY_FIRST * (2 ** min(failures - 1, 20)), interval)
        return last_failure + delay
    if last_success is None:
        return created
    return last_success + interval
