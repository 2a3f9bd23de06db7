"""Users, roles and Redis ACLs: the request models of /v1/users, /v1/roles and /v1/redis_acls and the
records the cluster state keeps (Redis Enterprise's shapes). Pure.

A role has a management level (what its users may do through the REST API and the console) and is
given Redis ACLs per database by the database's `roles_permissions` (what its users may run on that
database's shards). A user has roles (`role_uids`) or, in the older shape, one management `role`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator

from recluster.api.access import (
    BUILTIN_REDIS_ACLS,
    MANAGEMENT_LEVELS,
    Management,
    name_problem,
    password_problem,
    user_name_problem,
)
from recluster.api.access import USER_NAME_RE as USER_NAME_RE  # where the broker's tests look for it
from recluster.api.acl_rules import rule_problem
from recluster.node.model_base import Record, Strict


def _check(problem: Callable[[str], str | None]) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        found = problem(value) if value is not None else None
        if found:
            raise ValueError(found)
        return value

    return check


_name = _check(name_problem)
_user_name = _check(user_name_problem)
_password = _check(password_problem)


_acl = _check(rule_problem)


class RedisAclCreate(Strict):
    name: str
    acl: str = Field(description="Redis ACL rules, for example '+@read ~*'")
    _name = field_validator("name")(_name)
    _rules = field_validator("acl")(_acl)


class RedisAclUpdate(Strict):
    name: str | None = None
    acl: str | None = None
    _name = field_validator("name")(_name)
    _rules = field_validator("acl")(_acl)


class RoleCreate(Strict):
    name: str
    management: Management = "none"
    _name = field_validator("name")(_name)


class RoleUpdate(Strict):
    name: str | None = None
    management: Management | None = None
    _name = field_validator("name")(_name)


class UserCreate(Strict):
    name: str
    password: str = Field(json_schema_extra={"writeOnly": True})
    email: str = Field(default="", max_length=254)
    role_uids: list[int] = Field(default_factory=list, max_length=64)
    role: Management | None = Field(default=None, description="the older shape: one management level")
    email_alerts: bool = False
    auth_method: Literal["regular"] = "regular"
    _user = field_validator("name")(_user_name)
    _pass = field_validator("password")(_password)


class UserUpdate(Strict):
    """PUT /v1/users/{uid}: a partial user; `name` may be sent but not changed."""

    name: str | None = None
    password: str | None = Field(default=None, json_schema_extra={"writeOnly": True})
    email: str | None = Field(default=None, max_length=254)
    role_uids: list[int] | None = Field(default=None, max_length=64)
    role: Management | None = None
    email_alerts: bool | None = None
    auth_method: Literal["regular"] | None = None
    _pass = field_validator("password")(_password)


class PasswordChange(Strict):
    """PUT /v1/users/password: a user changes its own password, proving the old one."""

    username: str
    old_password: str
    new_password: str
    _pass = field_validator("new_password")(_password)


# ---- records ------------------------------------------------------------------------------------


class RedisAclRecord(Record):
    uid: int
    name: str
    acl: str


class RoleRecord(Record):
    uid: int
    name: str
    management: Management = "none"


class UserRecord(Record):
    uid: int
    name: str
    email: str = ""
    password_hash: str  # scrypt, salted: checks the REST API's and console's Basic credentials
    # the SHA-256 Redis ACLs check a database password against, sealed with a key derived from the
    # cluster's secret (node/acl_secrets.py): never stored readable
    acl_password: str
    role_uids: list[int] = Field(default_factory=list)
    role: Management | None = None
    email_alerts: bool = False
    auth_method: str = "regular"
    password_issue_date: str = ""
    created_time: str = ""


class RolePermission(Strict):
    """One entry of a bdb's `roles_permissions`: the role's users get the Redis ACL on the database."""

    role_uid: int = Field(ge=1)
    redis_acl_uid: int = Field(ge=1)


def builtin_acls() -> dict[int, RedisAclRecord]:
    return {uid: RedisAclRecord(uid=uid, name=name, acl=acl)
            for uid, (name, acl) in BUILTIN_REDIS_ACLS.items()}


def management_of(user: UserRecord, roles: dict[int, RoleRecord]) -> str:
    """The strongest management level among the user's roles (or its older `role`)."""
    levels = [roles[uid].management for uid in user.role_uids if uid in roles]
    if user.role is not None:
        levels.append(user.role)
    return max(levels, key=MANAGEMENT_LEVELS.index, default="none")
