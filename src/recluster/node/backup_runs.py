"""Scheduled backups, run by the leader (Redis Enterprise's cluster runs them, not the operator): each
leader pass starts the backups node/backup_schedule.py finds due, in the background, so a slow or
failing store never holds the leader loop or the database. A backup is a snapshot through the
replication protocol (from an active replica when there is one, so the master does no work; the shard
roles of the state at that moment, so a failover in between is followed) uploaded with its manifest
(node/backup.py). Its end goes into the state: `last_backup_time` and `backup_status: succeeded`, or
`failed` with `backup_failure_reason` (Redis Enterprise's word) and recluster's message, the failures
counted for the retry's doubling delay and the metrics."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recluster.api.backup import BackupError, Destination
from recluster.node.backup import ShardAddress, export_database
from recluster.node.backup_schedule import due_backups, unsealed
from recluster.node.ccs import CcsStore
from recluster.node.config import NodeConfig, engine_table
from recluster.node.database_tls import node_client_tls
from recluster.node.engines import Engine
from recluster.node.errors import ApiError
from recluster.node.records import BdbRecord, ClusterState
from recluster.node.runtime import NodeRuntime

log = logging.getLogger(__name__)


def shard_address(data_dir: Path, state: ClusterState, bdb: BdbRecord, *, replica_first: bool,
                  job: str) -> ShardAddress:
    """Where to reach the database now: an active replica first (a snapshot; the master does no work)
    or only the master (an import); ApiError (409) when none is on a reachable node."""
    shards = [s for s in state.shards_of(bdb.uid) if s.status == "active"]
    order = sorted(shards, key=lambda s: (s.role == "master") if replica_first else (s.role != "master"))
    for shard in order:
        if not replica_first and shard.role != "master":
            continue
        node = state.nodes.get(shard.node_uid)
        if node is not None and node.reachable:
            user, password = bdb.login(job)  # type: ignore[arg-type]
            tls = node_client_tls(data_dir) if bdb.tls() else None
            return ShardAddress(node.addr, bdb.port, user, password, tls)
    raise ApiError(409, "busy", f"database {bdb.uid} has no active {'shard' if replica_first else 'master'} "
                   "on a reachable node now; retry")


def database_engine(cfg: NodeConfig, bdb: BdbRecord) -> Engine:
    """The engine the database runs, whose RDB format a backup has and whose binary checks an import."""
    engine = engine_table(cfg).get(bdb.redis_version)
    if engine is None:
        raise ApiError(406, "invalid_parameter", f"database {bdb.uid} runs {bdb.redis_version}, which this "
                       f"node does not have (it has {', '.join(engine_table(cfg).versions())})")
    return engine


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ScheduledBackups:
    """The backups this node runs as the leader; `start_due` is called by every leader pass."""

    def __init__(self, rt: NodeRuntime) -> None:
        self.rt = rt
        self.cfg = rt.cfg
        self._running: dict[int, asyncio.Task[None]] = {}

    async def start_due(self, store: CcsStore, state: ClusterState) -> None:
        for uid in due_backups(state, datetime.now(UTC), self._running, self.cfg.test_backup_interval_s):
            bdb = state.bdbs[uid]
            task = asyncio.get_running_loop().create_task(self._backup(store, state, bdb))
            self._running[uid] = task
            task.add_done_callback(lambda _, uid=uid: self._running.pop(uid, None))  # type: ignore[misc]

    def cancel(self) -> None:
        for task in list(self._running.values()):
            task.cancel()

    async def _backup(self, store: CcsStore, state: ClusterState, bdb: BdbRecord) -> None:
        digest = bdb.backup_location_digest
        try:
            destination: Destination = unsealed(bdb, self.rt.backup_key_seal().open)
            engine = database_engine(self.cfg, bdb)
            source = shard_address(self.cfg.data_dir, state, bdb, replica_first=True, job="replication")
            await self._record(store, bdb.uid, digest, f"scheduled backup of database {bdb.uid} started",
                               backup_status="exporting", backup_progress=0)

            async def progress(percent: int) -> None:
                await self._record(store, bdb.uid, digest, f"backup progress of database {bdb.uid}",
                                   backup_progress=percent)

            directory, _ = await export_database(
                bdb_uid=bdb.uid, bdb_name=bdb.name, engine_version=engine.rdb_line, source=source,
                destination=destination, work_dir=self.cfg.data_dir / "backup-work", progress=progress)
        except asyncio.CancelledError:
            raise
        except (BackupError, ApiError) as exc:
            reason = exc.reason if isinstance(exc, BackupError) else "general-error"
            await self._failed(store, bdb, digest, reason, str(exc))
            return
        except Exception as exc:  # any other fault still ends the backup, named, and is retried
            log.exception("scheduled backup of database %s failed", bdb.uid)
            await self._failed(store, bdb, digest, "general-error",
                               f"unexpected {type(exc).__name__}; see the leader's log")
            return
        log.info("scheduled backup of database %s written to %smanifest.json", bdb.uid, directory)
        await self._record(store, bdb.uid, digest, f"scheduled backup of database {bdb.uid} succeeded",
                           backup_status="succeeded", backup_progress=100, last_backup_time=_now(),
                           backup_failure_reason=None, backup_failure_message=None, backup_failures=0,
                           backup_location_written=f"{directory}manifest.json")

    async def _failed(self, store: CcsStore, bdb: BdbRecord, digest: str, reason: str, message: str) -> None:
        log.warning("scheduled backup of database %s failed (%s): %s", bdb.uid, reason, message)

        def count(record: BdbRecord) -> dict[str, Any]:
            return {"backup_failures": record.backup_failures + 1,
                    "backup_failures_total": record.backup_failures_total + 1}

        await self._record(store, bdb.uid, digest, f"scheduled backup of database {bdb.uid} failed",
                           count, backup_status="failed", backup_failure_reason=reason,
                           backup_failure_message=message[:500], last_backup_failure_time=_now())

    async def _record(self, store: CcsStore, uid: int, digest: str, what: str, derived: Any = None,
                      **fields: Any) -> None:
        """Write a backup's progress or end, unless the database is gone or its destination changed
        meanwhile (the new one's schedule starts afresh)."""
        def change(state: ClusterState) -> None:
            record = state.bdbs.get(uid)
            if record is None or record.backup_location_digest != digest:
                return
            for key, value in {**fields, **(derived(record) if derived else {})}.items():
                setattr(record, key, value)

        try:
            await store.write(change, what)
        except Exception as exc:
            log.info("%s: not recorded: %s: %s", what, type(exc).__name__, exc)
