"""A REDB's restore from a backup, one step a pass: start the import the annotations ask for, then
record its end (redb/restore.py decides what to import, pure)."""

from __future__ import annotations

from typing import Any

from recluster.api.redb import API_VERSION, KIND
from recluster.clients.kubernetes import Kube
from recluster.operator.redb.cluster import DatabaseCluster
from recluster.operator.redb.restore import RESTORE_CREDENTIALS, RESTORED, RestoreInvalid, import_source
from recluster.operator.redb.secret import secret_value
from recluster.operator.status import post_event


async def restore_step(
    kube: Kube, cluster: DatabaseCluster, body: dict[str, Any], bdb: dict[str, Any]
) -> bool:
    """One step of a REDB's restore from a backup (redb/restore.py); True while the import runs.
    The end is written to the annotation RESTORED (the guard: it runs once) and as an event."""
    meta = body["metadata"]
    annotations: dict[str, str] = meta.get("annotations") or {}
    uid = int(bdb["uid"])
    state = bdb.get("import_status")
    if state == "importing":
        return True
    if state in ("succeeded", "failed"):
        ok = state == "succeeded"
        result = "succeeded" if ok else f"failed: {bdb.get('import_failure_message') or state}"
        await kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"],
                               {"metadata": {"annotations": {RESTORED: result}}})
        await post_event(kube, body, "Normal" if ok else "Warning", "Restored" if ok else "RestoreFailed",
                         "database restored from the backup" if ok else f"restore {result}"[:500])
        return False
    secret = None
    name = annotations.get(RESTORE_CREDENTIALS)
    if name:
        found = await kube.get("v1", "Secret", meta["namespace"], name)
        if found is not None:
            secret = {key: value for key in ("access_key_id", "secret_access_key", "ca_cert")
                      if (value := secret_value(found, key))}
    try:
        source = import_source(annotations, secret)
    except RestoreInvalid as exc:
        await kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"],
                               {"metadata": {"annotations": {RESTORED: f"failed: {exc}"}}})
        await post_event(kube, body, "Warning", "RestoreFailed", str(exc)[:500])
        return False
    await cluster.call(lambda api: api.import_bdb(uid, source))
    await post_event(kube, body, "Normal", "Restoring", f"importing {source['filename']} into the database")
    return True
