"""Which database a command means: a REDB's name, a database's name in the cluster, or its uid
(`3` or `db:3`, as `status` shows it). Pure."""

from __future__ import annotations

from typing import Any

from recluster.admin.errors import AdminError


def resolve_database(
    ref: str, bdbs: list[dict[str, Any]], redbs: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the bdb, its REDB or None) that `ref` names; AdminError listing the databases otherwise."""
    by_uid = {str(b["uid"]): b for b in bdbs}
    redb_of = {str((r.get("status") or {}).get("databaseUID")): r for r in redbs
               if (r.get("status") or {}).get("databaseUID")}
    for redb in redbs:
        if redb["metadata"]["name"] == ref:
            uid = str((redb.get("status") or {}).get("databaseUID") or "")
            if uid not in by_uid:
                raise AdminError(f"REDB {ref} has no database in the cluster yet "
                                 f"(status {(redb.get('status') or {}).get('status') or 'none'})")
            return by_uid[uid], redb
    named = [b for b in bdbs if b.get("name") == ref]
    if len(named) == 1:
        return named[0], redb_of.get(str(named[0]["uid"]))
    uid = ref.removeprefix("db:")
    if uid in by_uid:
        return by_uid[uid], redb_of.get(uid)
    known = ", ".join(f"{b.get('name')} (db:{b['uid']})" for b in sorted(bdbs, key=lambda b: int(b["uid"])))
    raise AdminError(f"no database {ref!r}: name a REDB, a database or its uid "
                     f"(databases: {known or 'none'})")
