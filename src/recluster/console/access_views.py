"""What the console shows of users, roles and Redis ACLs, and what it lets the logged-in user do.
Pure: REST JSON in, display-ready dicts and request bodies out (no I/O, no clock).

The REST API decides who may do what (403 `insufficient_permissions`); the console only learns the
session's management level so it can hide what would be refused (`capabilities`). Passwords from
the forms go into request bodies only: never into a row, a message or an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from recluster.api.access import BUILTIN_REDIS_ACLS, MANAGEMENT_LEVELS, password_problem

# the REST API's 403 names the caller's level: "the user's role (db_viewer) does not allow GET ..."
_REFUSED_LEVEL = re.compile(r"role \(([a-z_]+)\)")
DATABASE_WRITERS = frozenset({"admin", "cluster_member", "db_member"})
LEVEL_TEXT = {
    "admin": "admin: everything",
    "cluster_member": "cluster member: reads everything but users, changes databases",
    "cluster_viewer": "cluster viewer: reads everything but users",
    "db_member": "database member: reads databases, changes them",
    "db_viewer": "database viewer: reads databases",
    "none": "none: databases only (no console, no REST API)",
}


def level_from_refusal(status: int, body: Any) -> str | None:
    """The caller's management level named by the REST API's 403 answer, or None."""
    if status != 403 or not isinstance(body, Mapping):
        return None
    found = _REFUSED_LEVEL.search(str(body.get("message", "")))
    return found.group(1) if found and found.group(1) in MANAGEMENT_LEVELS else None


def capabilities(level: str | None) -> dict[str, Any]:
    """What the pages offer a session of `level` (None: not known; the pages offer database writes
    and let the REST API decide)."""
    return {"level": level or "unknown", "level_text": LEVEL_TEXT.get(level or "", "not known"),
            "manage_access": level == "admin",
            "write_databases": level is None or level in DATABASE_WRITERS}


def refused_text(level: str | None, what: str) -> str:
    return f"Your role ({level or 'unknown'}) does not allow {what}; the cluster's admin does."


# ---- rows ---------------------------------------------------------------------------------------

def _uid(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _names(items: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    return {_uid(i.get("uid")): str(i.get("name", "")) for i in items}


def user_rows(users: Sequence[Mapping[str, Any]], roles: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = _names(roles)
    rows = []
    for user in sorted(users, key=lambda u: str(u.get("name", ""))):
        role_uids = [_uid(r) for r in user.get("role_uids") or []]
        rows.append({"uid": _uid(user.get("uid")), "name": str(user.get("name", "")),
                     "email": str(user.get("email") or ""), "role_uids": role_uids,
                     "roles_text": ", ".join(names.get(r, f"role {r}") for r in role_uids) or "none",
                     "level": str(user.get("role") or "none")})
    return rows


def permission_rows(bdbs: Sequence[Mapping[str, Any]], roles: Sequence[Mapping[str, Any]] | None,
                    acls: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per database uid (a string: JSON keys), its roles_permissions with names (`roles` is None
    when the session may not read them: the role shows by uid)."""
    role_names, acl_names = _names(roles or []), _names(acls)
    out: dict[str, list[dict[str, Any]]] = {}
    for bdb in bdbs:
        rows = []
        for p in bdb.get("roles_permissions") or []:
            role, acl = _uid(p.get("role_uid")), _uid(p.get("redis_acl_uid"))
            rows.append({"role_uid": role, "role": role_names.get(role, f"role {role}"),
                         "redis_acl_uid": acl, "acl": acl_names.get(acl, f"Redis ACL {acl}")})
        out[str(_uid(bdb.get("uid")))] = rows
    return out


def role_rows(roles: Sequence[Mapping[str, Any]], bdbs: Sequence[Mapping[str, Any]],
              acls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each role with the databases that give it a Redis ACL ("orders: Read Only")."""
    acl_names = _names(acls)
    grants: dict[int, list[str]] = {}
    for bdb in sorted(bdbs, key=lambda b: str(b.get("name", ""))):
        for p in bdb.get("roles_permissions") or []:
            acl = _uid(p.get("redis_acl_uid"))
            grants.setdefault(_uid(p.get("role_uid")), []).append(
                f"{bdb.get('name', '')}: {acl_names.get(acl, f'Redis ACL {acl}')}")
    return [{"uid": _uid(r.get("uid")), "name": str(r.get("name", "")),
             "management": str(r.get("management", "none")),
             "databases": grants.get(_uid(r.get("uid")), []),
             "databases_text": "; ".join(grants.get(_uid(r.get("uid")), [])) or "none"}
            for r in sorted(roles, key=lambda r: str(r.get("name", "")))]


def acl_rows(acls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"uid": _uid(a.get("uid")), "name": str(a.get("name", "")), "acl": str(a.get("acl", "")),
             "predefined": _uid(a.get("uid")) in BUILTIN_REDIS_ACLS}
            for a in sorted(acls, key=lambda a: _uid(a.get("uid")))]


# ---- forms --------------------------------------------------------------------------------------

Form = Mapping[str, Any]
Checked = tuple[dict[str, Any], dict[str, str]]  # (the REST body, {form field: problem})


def _text(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _secret(form: Form, name: str, errors: dict[str, str], label: str) -> str:
    """A password field as typed (never stripped, never echoed): its length rule is checked here so
    the rule is shown (the REST API hides everything about a refused password)."""
    value = form.get(name, "")
    value = value if isinstance(value, str) else ""
    problem = password_problem(value)
    if problem:
        errors[name] = f"{label} {problem}"
    return value


def _uids(form: Form, name: str, errors: dict[str, str]) -> list[int]:
    raw = form.get(name) or []
    raw = raw if isinstance(raw, list) else [raw]
    try:
        return sorted({int(v) for v in raw})
    except (TypeError, ValueError):
        errors[name] = "choose roles from the list"
        return []


def user_create_body(form: Form) -> Checked:
    errors: dict[str, str] = {}
    body = {"name": _text(form, "name"), "email": _text(form, "email"),
            "password": _secret(form, "password", errors, "the password"),
            "role_uids": _uids(form, "role_uids", errors)}
    return body, errors


def user_update_body(form: Form) -> Checked:
    """The email and the roles of a user."""
    errors: dict[str, str] = {}
    return {"email": _text(form, "email"), "role_uids": _uids(form, "role_uids", errors)}, errors


def user_password_body(form: Form) -> Checked:
    """An admin sets a user's password (the user proves nothing)."""
    errors: dict[str, str] = {}
    return {"password": _secret(form, "password", errors, "the password")}, errors


def own_password_body(form: Form, username: str) -> Checked:
    """PUT /v1/users/password: the logged-in user's own, proving the old one."""
    errors: dict[str, str] = {}
    old = form.get("old_password", "")
    if not isinstance(old, str) or not old:
        errors["old_password"] = "enter your current password"  # noqa: S105 (a message)
    new = _secret(form, "new_password", errors, "the new password")
    if not errors and new == old:
        errors["new_password"] = "the new password must differ from the current one"  # noqa: S105
    return {"username": username, "old_password": old if isinstance(old, str) else "",
            "new_password": new}, errors


def role_body(form: Form) -> Checked:
    errors: dict[str, str] = {}
    management = _text(form, "management") or "none"
    if management not in MANAGEMENT_LEVELS:
        errors["management"] = f"choose one of {', '.join(MANAGEMENT_LEVELS)}"
    return {"name": _text(form, "name"), "management": management}, errors


def acl_body(form: Form, creating: bool) -> Checked:
    body = {"acl": _text(form, "acl")}
    if creating:
        body["name"] = _text(form, "name")
    return body, {}


def permissions_body(form: Form) -> Checked:
    """A database's roles_permissions from the form's rows [{role_uid, redis_acl_uid}]; a row with
    neither chosen is dropped, a half-filled one is refused."""
    errors: dict[str, str] = {}
    rows = form.get("roles_permissions") or []
    chosen: list[dict[str, int]] = []
    for number, row in enumerate(rows if isinstance(rows, list) else [], start=1):
        row = row if isinstance(row, Mapping) else {}
        role, acl = str(row.get("role_uid") or "").strip(), str(row.get("redis_acl_uid") or "").strip()
        if not role and not acl:
            continue
        try:
            chosen.append({"role_uid": int(role), "redis_acl_uid": int(acl)})
        except ValueError:
            errors["roles_permissions"] = f"row {number}: choose both a role and a Redis ACL"
    return {"roles_permissions": chosen}, errors


def access_errors(status: int, body: Any, fields: Sequence[str]) -> dict[str, Any]:
    """An API error as {message, fields: {form field: message}} for one of these forms: the field the
    API names ('role_uids.0' is the form's 'role_uids') gets the API's message; a refusal by role
    says so plainly."""
    data = body if isinstance(body, Mapping) else {}
    message = str(data.get("message") or f"the request failed (HTTP {status})")
    code = str(data.get("error_code", ""))
    if status == 403 and code == "insufficient_permissions":
        level = level_from_refusal(status, data)
        message = f"{refused_text(level, 'this')} ({message})"
    field = str(data.get("field") or "").split(".")[0]
    return {"message": message, "fields": {field: message} if field in fields else {}, "code": code}
