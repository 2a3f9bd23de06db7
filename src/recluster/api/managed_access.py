"""REC `spec.managed`: the users, roles and Redis ACLs a platform team declares in Kubernetes, with
passwords in Secrets, and the operator keeps in the cluster (recluster.operator.rec.access). The
shape follows CloudNativePG's `spec.managed.roles`: a list per kind, each entry named, a user's
password from a Secret, `ensure: absent` to remove one; an entry taken out of the list is removed too
(the operator remembers what it manages in `status.managed`). Objects made otherwise (REST API,
console) are left alone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from recluster.api.access import Management, name_problem, user_name_problem
from recluster.api.acl_rules import rule_problem
from recluster.api.common import ApiModel

MAX_MANAGED = 256


def _raise(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


class ManagedRedisAcl(ApiModel):
    name: str = Field(description="The Redis ACL's name in the cluster (what REDB rolesPermissions names).")
    acl: str = Field(description="Redis ACL rules, e.g. '+@read ~*' or '+@all -@dangerous ~cache:*'.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _raise(name_problem(value))
        return value

    @field_validator("acl")
    @classmethod
    def _rules(cls, value: str) -> str:
        _raise(rule_problem(value))
        return value


class ManagedRole(ApiModel):
    name: str = Field(description="The role's name in the cluster.")
    management: Management = Field(default="none", description="What the role's users may do through the "
                                   "REST API and console: admin, cluster_member, cluster_viewer, db_member, "
                                   "db_viewer or none (databases only).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _raise(name_problem(value))
        return value


class PasswordSecret(ApiModel):
    name: str = Field(min_length=1, description="A Secret in the REC's namespace.")
    key: str = Field(default="password", min_length=1, description="The key holding the password.")


class ManagedUser(ApiModel):
    name: str = Field(description="The user's name: its login to the REST API, the console and the "
                      "databases (AUTH <name> <password>).")
    email: str | None = Field(default=None, max_length=254)
    roles: list[str] = Field(default_factory=list, description="Names of the cluster's roles.")
    password_secret: PasswordSecret | None = Field(
        default=None, description="Where the password is; required unless ensure is absent. A change of "
        "the Secret changes the password.")
    ensure: Literal["present", "absent"] = "present"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _raise(user_name_problem(value))
        return value

    @model_validator(mode="after")
    def _password(self) -> ManagedUser:
        if self.ensure == "present" and self.password_secret is None:
            raise ValueError("passwordSecret is required for a user that is present")
        return self


class ManagedAccess(ApiModel):
    redis_acls: list[ManagedRedisAcl] = Field(default_factory=list, max_length=MAX_MANAGED)
    roles: list[ManagedRole] = Field(default_factory=list, max_length=MAX_MANAGED)
    users: list[ManagedUser] = Field(default_factory=list, max_length=MAX_MANAGED)

    @model_validator(mode="after")
    def _unique(self) -> ManagedAccess:
        for kind, names in (("redisAcls", [a.name for a in self.redis_acls]),
                            ("roles", [r.name for r in self.roles]), ("users", [u.name for u in self.users])):
            seen: set[str] = set()
            for name in names:
                if name.lower() in seen:
                    raise ValueError(f"{kind}: '{name}' is listed twice")
                seen.add(name.lower())
        return self
