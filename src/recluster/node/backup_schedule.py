"""Scheduled backups of a database (the bdb's `backup`, `backup_interval`, `backup_location`), the pure
decisions: what a create or update writes into the record, and which databases are due now.

The schedule lives in the cluster state, so a new leader carries on where the last one stopped: a
backup when backups are enabled or get a new destination (`backup_since`), then `backup_interval`
after the last success; after failures a retry with doubling delays from one minute, never longer
than the interval (api/backup.next_backup). The S3 secret key is sealed before it enters the state
and the location itself is never shown: views show its digest."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from recluster.api.backup import Destination, S3Destination, next_backup, parse_destination
from recluster.api.field_errors import SpecInvalid
from recluster.api.redb_backup import location_digest
from recluster.node.bdb_fields import DEFAULT_BACKUP_INTERVAL_S
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterState

SEALED = "sealed:"
# a database whose shards may be snapshotted: not while it is made, deleted or has its engine moved
BACKED_UP_STATUSES = ("active", "active-change-pending")


def _destination(location: dict[str, Any]) -> Destination:
    try:
        return parse_destination(location, "backup_location")
    except SpecInvalid as exc:
        first = exc.errors[0]
        raise ApiError(400, "invalid_parameter", str(exc), first.field) from None


def backup_fields(current: BdbRecord | None, backup: bool | None, interval: int | None,
                  location: dict[str, Any] | None, now: str, seal: Callable[[str], str]) -> dict[str, Any]:
    """The record's backup fields after a create (`current` None) or an update asking for these (None:
    unchanged), or ApiError (400) naming the field. Enabling backups or a new destination starts the
    schedule again (a backup at once, no failures counted); the secret key is sealed with `seal`."""
    enabled = backup if backup is not None else bool(current and current.backup)
    fields: dict[str, Any] = {}
    if location is not None:
        destination = _destination(location)
        digest = location_digest(location)
        if current is None or digest != current.backup_location_digest:
            stored = dict(location)
            if isinstance(destination, S3Destination):
                stored["secret_access_key"] = SEALED + seal(destination.secret_access_key)
            fields.update(backup_location=stored, backup_location_digest=digest)
    has_location = location is not None or bool(current and current.backup_location)
    if enabled and not has_location:
        raise ApiError(400, "missing_backup_location", "'backup_location': required when backup is true "
                       "(type s3 or mount_point)", "backup_location")
    if interval is not None:
        fields["backup_interval"] = interval
    elif enabled and not (current and current.backup_interval):
        fields["backup_interval"] = DEFAULT_BACKUP_INTERVAL_S
    if backup is not None:
        fields["backup"] = backup
    restarted = enabled and (current is None or not current.backup or "backup_location" in fields)
    if restarted:
        fields.update(backup_since=now, backup_failures=0)
    return fields


def unsealed(bdb: BdbRecord, open_sealed: Callable[[str], str | None]) -> Destination:
    """The destination of the database's backups with its secret key opened, or ApiError when the
    state holds none or a key this cluster cannot open (its secret changed: set the location again)."""
    if not bdb.backup_location:
        raise ApiError(409, "missing_backup_location", f"database {bdb.uid} has no backup_location")
    location = dict(bdb.backup_location)
    sealed = location.get("secret_access_key")
    if isinstance(sealed, str) and sealed.startswith(SEALED):
        opened = open_sealed(sealed[len(SEALED):])
        if opened is None:
            raise ApiError(409, "invalid_backup_location", "the stored secret key of backup_location cannot "
                           "be opened with this cluster's secret: set backup_location again")
        location["secret_access_key"] = opened
    return _destination(location)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def next_backup_time(bdb: BdbRecord, interval_override_s: float = 0.0) -> datetime | None:
    """When the database's next scheduled backup runs (None: backups are off). `interval_override_s`
    (the node's test knob, 0: none) replaces the interval."""
    if not bdb.backup or not bdb.backup_location:
        return None
    interval_s = interval_override_s or bdb.backup_interval or DEFAULT_BACKUP_INTERVAL_S
    since = _time(bdb.backup_since) or _time(bdb.created_time) or datetime.fromtimestamp(0, UTC)
    last = _time(bdb.last_backup_time)
    if last is not None and last < since:
        last = None  # a success before the schedule (re)started: another destination, or backups were off
    failed = _time(bdb.last_backup_failure_time)
    failures = bdb.backup_failures if failed is not None and failed >= since else 0
    return next_backup(interval_s / 3600, last, since, failures, failed)


def due_backups(state: ClusterState, now: datetime, running: Iterable[int],
                interval_override_s: float = 0.0) -> list[int]:
    """The databases whose scheduled backup should start now (none runs for them here)."""
    busy = set(running)
    due = []
    for bdb in sorted(state.bdbs.values(), key=lambda b: b.uid):
        if bdb.uid in busy or bdb.status not in BACKED_UP_STATUSES or bdb.upgrade_from:
            continue
        when = next_backup_time(bdb, interval_override_s)
        if when is not None and when <= now:
            due.append(bdb.uid)
    return due
