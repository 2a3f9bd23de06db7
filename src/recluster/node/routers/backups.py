"""Export and import of a database: /v1/bdbs/{uid}/actions/export, import and their
*_reset_status (Redis Enterprise's calls; node/backup_actions.py runs them)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends

from recluster.node import backup_actions
from recluster.node.backup_actions import ExportRequest, ImportRequest
from recluster.node.deps import Daemon, authenticated
from recluster.node.schemas import AUTHENTICATED, Empty, doc

router = APIRouter(tags=["databases"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.post("/v1/bdbs/{uid}/actions/export", **doc(None, 400, 404, 409))
async def export_bdb(uid: int, body: ExportRequest, daemon: Daemon) -> dict[str, Any]:
    """Write a backup of the database now to `export_location` (type s3 or mount_point); the bdb's
    export_status, export_progress and export_failure_reason/_message say how it goes."""
    return await backup_actions.start_export(daemon, uid, body)


@router.post("/v1/bdbs/{uid}/actions/import", **doc(None, 400, 404, 406, 409))
async def import_bdb(uid: int, body: ImportRequest, daemon: Daemon) -> dict[str, Any]:
    """Replace the database's data with a backup (its manifest.json) or an RDB file; every check runs
    before the data is touched. The bdb's import_status, import_progress and
    import_failure_reason/_message say how it goes."""
    return await backup_actions.start_import(daemon, uid, body)


async def _reset(uid: int, daemon: Daemon, kind: Literal["export", "import"]) -> dict[str, Any]:
    await backup_actions.reset_status(daemon, uid, kind)
    return {}


@router.put("/v1/bdbs/{uid}/actions/export_reset_status", **doc(Empty, 400, 404, 409))
async def export_reset_status(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await _reset(uid, daemon, "export")


@router.put("/v1/bdbs/{uid}/actions/import_reset_status", **doc(Empty, 400, 404, 409))
async def import_reset_status(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await _reset(uid, daemon, "import")
