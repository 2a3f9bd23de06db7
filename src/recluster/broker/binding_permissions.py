"""A binding's user on the cluster: the arithmetic of a bdb's `roles_permissions` that gives the
binding's role its Redis ACL, takes it away, or re-points it after a plan change. Pure: grants.py
reads and writes the REST objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def named(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The REST object (user, role, Redis ACL) of that name: the cluster's names are unique
    regardless of case."""
    return next((o for o in objects if str(o.get("name", "")).lower() == name.lower()), None)


def permissions_of(bdb: dict[str, Any]) -> list[dict[str, int]]:
    """A bdb's `roles_permissions` as the REST API takes them back."""
    return [{"role_uid": int(p["role_uid"]), "redis_acl_uid": int(p["redis_acl_uid"])}
            for p in bdb.get("roles_permissions") or []]


def with_permission(current: list[dict[str, int]], role_uid: int,
                    acl_uid: int) -> list[dict[str, int]] | None:
    """`roles_permissions` giving the role that ACL, every other entry kept as it is; None when
    nothing changes."""
    wanted = {"role_uid": role_uid, "redis_acl_uid": acl_uid}
    if wanted in current:
        return None
    return [p for p in current if p["role_uid"] != role_uid] + [wanted]


def without_permissions(current: list[dict[str, int]],
                        role_uids: Iterable[int]) -> list[dict[str, int]] | None:
    """`roles_permissions` without those roles, every other entry kept; None when nothing changes."""
    gone = set(role_uids)
    kept = [p for p in current if p["role_uid"] not in gone]
    return kept if len(kept) != len(current) else None


def repointed(current: list[dict[str, int]], role_uids: Iterable[int],
              acl_uid: int) -> list[dict[str, int]] | None:
    """`roles_permissions` where those roles (the bindings' of an instance whose plan changed) that
    have an entry get that ACL; other entries kept; None when nothing changes."""
    mine = set(role_uids)
    changed = [{**p, "redis_acl_uid": acl_uid} if p["role_uid"] in mine else p for p in current]
    return changed if changed != current else None
