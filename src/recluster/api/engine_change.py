"""Which change of a live database's engine version the cluster makes in place, stated once for the
REST API (`PUT /v1/bdbs/<uid>` `redis_version`) and the admission webhook (REDB `spec.redisVersion`).

An in-place upgrade restarts the replica on the new engine, fails over to it, then restarts the old
master (now a replica) on it: for a while a shard of the newer engine replicates from one of the
older, never the other way round. Pure: the rule and its message, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from recluster.api.engine_versions import normalize_version

WHY_NOT_DOWN = ("replicas on the older engine cannot read what the newer one writes (Redis 8.0 writes "
                "RDB format 12, Redis 7.0 reads up to 10), so the database could not keep a replica "
                "while it moves")
WHY_NOT_ACROSS = ("Redis and Valkey are different engines, not versions of one: moving between them is "
                  "not an upgrade this cluster makes in place (Valkey 8.1 cannot read Redis 8.0's RDB "
                  "format 12)")
WHY_REPLICA = ("an in-place upgrade keeps the database serving by restarting its replica on the new "
               "engine and failing over to it; this database has no replica (replication is off). Turn "
               "replication on, upgrade, then turn it off again if you want")


def _parts(version: str) -> tuple[str, tuple[int, int]]:
    """("redis" | "valkey", (major, minor)) of a normalized version."""
    db_type, _, number = version.rpartition("-")
    major, minor = number.split(".")
    return db_type or "redis", (int(major), int(minor))


def engine_change_refusal(current: str, requested: str, bundled: Sequence[str] | None,
                          replication: bool) -> str | None:
    """Why the database running (or being upgraded to) `current` cannot move to `requested` in
    place, or None when it can (or nothing changes). `bundled`: the versions the cluster runs (None:
    not known here, the cluster checks it). The message names neither field; callers prefix theirs."""
    now, wanted = normalize_version(current), normalize_version(requested)
    if wanted is None or now is None or wanted == now:
        return None  # the version's spelling is checked apart; the same version changes nothing
    if bundled is not None and wanted not in bundled:
        return (f"'{requested}' is not a version this cluster bundles; it runs "
                f"{', '.join(bundled) or 'none'}")
    (now_type, now_number), (wanted_type, wanted_number) = _parts(now), _parts(wanted)
    if now_type != wanted_type:
        return f"the database runs {now}; changing it to {wanted} is refused: {WHY_NOT_ACROSS}"
    if wanted_number < now_number:
        return f"the database runs {now}; a downgrade to {wanted} is refused: {WHY_NOT_DOWN}"
    if not replication:
        return f"upgrading from {now} to {wanted} needs a replica: {WHY_REPLICA}"
    return None


def upgrade_running(spec_version: str | None, status_version: str | None) -> bool:
    """A REDB whose accepted `spec.redisVersion` differs from what every shard runs
    (`status.version`) is being upgraded."""
    spec = normalize_version(spec_version) if spec_version else None
    running = normalize_version(status_version) if status_version else None
    return spec is not None and running is not None and spec != running
