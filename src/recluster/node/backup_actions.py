"""The REST actions export, import and their *_reset_status (Redis Enterprise's shapes), run on the
leader (writes are forwarded to it): the request is checked (bad input is a 400 naming the field and
changes nothing), the bdb's export_status / import_status says `exporting` / `importing`, and the
work (node/backup.py) runs in the background; its end is written back as `succeeded`, or `failed`
with *_failure_reason (Redis Enterprise's word) and *_failure_message (the problem in a sentence).

The S3 keys of a request are used for that request only: never stored in the cluster state, never
logged, never shown back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import Field

from recluster.api.backup import BackupError, Destination, parse_destination
from recluster.api.field_errors import SpecInvalid
from recluster.node.backup import ShardAddress, export_database, import_database
from recluster.node.backup_runs import database_engine, shard_address
from recluster.node.daemon import NodeDaemon
from recluster.node.engines import Engine
from recluster.node.errors import ApiError
from recluster.node.model_base import Strict
from recluster.node.records import BdbRecord, ClusterState

log = logging.getLogger(__name__)
_RUNNING: set[asyncio.Task[None]] = set()  # the background work, kept from the garbage collector
# (bdb uid, "export" or "import") of the work this process runs: a status `exporting`/`importing`
# with no such work here was left by a leader that is gone (the work runs on the leader), and a new
# export, import or reset goes ahead instead of waiting for ever
_WORKING: set[tuple[int, str]] = set()


class ExportRequest(Strict):
    """POST /v1/bdbs/{uid}/actions/export (Redis Enterprise's body)."""

    export_location: dict[str, Any]
    email_notification: bool = False


class ImportRequest(Strict):
    """POST /v1/bdbs/{uid}/actions/import (Redis Enterprise's body): one source, whose `filename`
    names a backup's manifest.json (all its shard files are imported) or a single RDB file."""

    dataset_import_sources: list[dict[str, Any]] = Field(min_length=1)
    email_notification: bool = False


def _destination(body: Any, where: str) -> Destination:
    try:
        return parse_destination(body, where)
    except SpecInvalid as exc:
        first = exc.errors[0]
        raise ApiError(400, "invalid_parameter", str(exc), first.field) from None


def _import_source(request: ImportRequest) -> tuple[Destination, str]:
    if len(request.dataset_import_sources) != 1:
        raise ApiError(400, "invalid_parameter", "dataset_import_sources: give exactly one source (a "
                       "backup's manifest.json or one RDB file)", "dataset_import_sources")
    body = request.dataset_import_sources[0]
    where = "dataset_import_sources[0]"
    destination = _destination(body, where)
    filename = body.get("filename") if isinstance(body, dict) else None
    if not isinstance(filename, str) or not filename.strip("/") or ".." in filename.split("/"):
        raise ApiError(400, "invalid_parameter", f"{where}.filename: the object to import (a backup's "
                       "manifest.json or an RDB file) is required, without '..'", f"{where}.filename")
    return destination, filename.strip("/")


def _bdb_for_work(state: ClusterState, uid: int, working: set[tuple[int, str]] | None = None) -> BdbRecord:
    """The database an export or import may start on: it exists, is active, and runs neither (a
    status left by a former leader, with no work in `working`, does not count)."""
    working = _WORKING if working is None else working
    bdb = state.bdbs.get(uid)
    if bdb is None:
        raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
    if bdb.status != "active":
        raise ApiError(409, "busy", f"database {uid} is {bdb.status}, not active; retry when it is")
    for kind in ("export", "import"):
        if (uid, kind) in working:
            raise ApiError(409, "busy", f"database {uid} is {kind}ing already; wait for it to end")
    return bdb


async def _record(daemon: NodeDaemon, uid: int, what: str, **fields: Any) -> None:
    def change(state: ClusterState) -> None:
        bdb = state.bdbs.get(uid)
        if bdb is not None:
            for key, value in fields.items():
                setattr(bdb, key, value)

    await daemon.write(change, what)


def _claim(uid: int, kind: str) -> None:
    """Mark `kind` as running on the database, or 409 when one runs (no await: atomic here)."""
    for running in ("export", "import"):
        if (uid, running) in _WORKING:
            raise ApiError(409, "busy", f"database {uid} is {running}ing already; wait for it to end")
    _WORKING.add((uid, kind))


def _spawn(work: Coroutine[Any, Any, None], uid: int, kind: str) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    task.add_done_callback(lambda _: _WORKING.discard((uid, kind)))


async def _start(daemon: NodeDaemon, uid: int, kind: str,
                 work: Callable[[], Coroutine[Any, Any, None]]) -> dict[str, Any]:
    """Claim `kind` (export or import) on the database, say so in its status, run `work` behind."""

    def begin(current: ClusterState) -> None:
        _bdb_for_work(current, uid, set())  # again, under the write (this one's work is claimed)
        record = current.bdbs[uid]
        setattr(record, f"{kind}_status", f"{kind}ing")
        setattr(record, f"{kind}_progress", 0)
        setattr(record, f"{kind}_failure_reason", None)
        setattr(record, f"{kind}_failure_message", None)

    _claim(uid, kind)
    try:
        await daemon.write(begin, f"start the {kind} of database {uid}")
    except BaseException:
        _WORKING.discard((uid, kind))
        raise
    _spawn(work(), uid, kind)
    return {"uid": uid, f"{kind}_status": f"{kind}ing", f"{kind}_progress": 0}


async def start_export(daemon: NodeDaemon, uid: int, request: ExportRequest) -> dict[str, Any]:
    destination = _destination(request.export_location, "export_location")
    state = await daemon.state()
    bdb = _bdb_for_work(state, uid)
    engine = database_engine(daemon.cfg, bdb)
    source = shard_address(daemon.cfg.data_dir, state, bdb, replica_first=True, job="replication")

    return await _start(daemon, uid, "export", lambda: _export(daemon, bdb, engine, source, destination))


async def _export(daemon: NodeDaemon, bdb: BdbRecord, engine: Engine, source: ShardAddress,
                  destination: Destination) -> None:
    async def progress(percent: int) -> None:
        await _record(daemon, bdb.uid, f"export progress of database {bdb.uid}", export_progress=percent)

    try:
        directory, _ = await export_database(
            bdb_uid=bdb.uid, bdb_name=bdb.name, engine_version=engine.rdb_line,
            source=source, destination=destination, work_dir=daemon.cfg.data_dir / "backup-work",
            progress=progress)
    except BackupError as exc:
        log.warning("export of database %s failed: %s", bdb.uid, exc)
        await _record(daemon, bdb.uid, f"export of database {bdb.uid} failed", export_status="failed",
                      export_failure_reason=exc.reason, export_failure_message=str(exc))
        return
    except Exception as exc:  # any other fault still ends the export, named
        log.exception("export of database %s failed", bdb.uid)
        await _record(daemon, bdb.uid, f"export of database {bdb.uid} failed", export_status="failed",
                      export_failure_reason="general-error",
                      export_failure_message=f"unexpected {type(exc).__name__}; see the node's log")
        return
    log.info("export of database %s written to %smanifest.json", bdb.uid, directory)
    await _record(daemon, bdb.uid, f"export of database {bdb.uid} succeeded", export_status="succeeded",
                  export_progress=100, export_location_written=f"{directory}manifest.json")


async def start_import(daemon: NodeDaemon, uid: int, request: ImportRequest) -> dict[str, Any]:
    source, filename = _import_source(request)
    state = await daemon.state()
    bdb = _bdb_for_work(state, uid)
    if not bdb.internal_password:
        raise ApiError(406, "invalid_parameter", f"database {uid} was made before the cluster's own logins "
                       "to shards, which an import needs; export it and import into a new database")
    engine = database_engine(daemon.cfg, bdb)
    target = shard_address(daemon.cfg.data_dir, state, bdb, replica_first=False, job="import")

    return await _start(daemon, uid, "import", lambda: _import(daemon, bdb, engine, source, filename, target))


async def _import(daemon: NodeDaemon, bdb: BdbRecord, engine: Engine, source: Destination, filename: str,
                  target: ShardAddress) -> None:
    async def progress(percent: int) -> None:
        await _record(daemon, bdb.uid, f"import progress of database {bdb.uid}", import_progress=percent)

    try:
        result = await import_database(
            filename=filename, source=source, engine_version=engine.rdb_line,
            redis_server=engine.server, target=target,
            work_dir=daemon.cfg.data_dir / "backup-work", progress=progress)
    except BackupError as exc:
        log.warning("import into database %s failed: %s", bdb.uid, exc)
        await _record(daemon, bdb.uid, f"import into database {bdb.uid} failed", import_status="failed",
                      import_failure_reason=exc.reason, import_failure_message=str(exc))
        return
    except Exception as exc:
        log.exception("import into database %s failed", bdb.uid)
        await _record(daemon, bdb.uid, f"import into database {bdb.uid} failed", import_status="failed",
                      import_failure_reason="general-error",
                      import_failure_message=f"unexpected {type(exc).__name__}; see the node's log")
        return
    log.info("import into database %s: %d keys, %d bytes in %.1fs", bdb.uid, result.keys, result.bytes,
             result.seconds)
    await _record(daemon, bdb.uid, f"import into database {bdb.uid} succeeded", import_status="succeeded",
                  import_progress=100)


async def reset_status(daemon: NodeDaemon, uid: int, kind: str) -> None:
    """export_reset_status / import_reset_status: the fields back to none, unless one runs."""

    def change(state: ClusterState) -> None:
        bdb = state.bdbs.get(uid)
        if bdb is None:
            raise ApiError(404, "db_not_exist", f"database {uid} does not exist")
        if (uid, kind) in _WORKING:
            raise ApiError(409, "busy", f"database {uid} is {kind}ing; its status is reset when it ends")
        for name in ("status", "progress", "failure_reason", "failure_message"):
            setattr(bdb, f"{kind}_{name}", None)

    await daemon.write(change, f"reset the {kind} status of database {uid}")
