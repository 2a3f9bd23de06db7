"""REC spec.managed -> REST calls: what is declared is created and kept (drift undone), what was
managed and no longer is goes, what someone else made is never touched. Pure."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recluster.api.managed_access import ManagedAccess
from recluster.operator.rec.access_plan import (
    Password,
    Record,
    plan_deletions,
    plan_redis_acls,
    plan_roles,
    plan_users,
)

pytestmark = pytest.mark.unit


def managed(**spec: Any) -> ManagedAccess:
    return ManagedAccess.model_validate(spec)


SPEC = managed(
    redisAcls=[{"name": "cache-rw", "acl": "+@all ~cache:*"}],
    roles=[{"name": "app", "management": "none"}, {"name": "ops", "management": "cluster_viewer"}],
    users=[
        {"name": "app1", "roles": ["app"], "passwordSecret": {"name": "app1-pw"}},
        {"name": "old", "ensure": "absent"},
    ],
)
BUILTIN = [
    {"uid": 1, "name": "Full Access", "acl": "+@all ~*"},
    {"uid": 2, "name": "Read Only", "acl": "+@read ~*"},
]


def test_an_empty_cluster_gets_everything_declared_in_order() -> None:
    calls, problems = plan_redis_acls(SPEC, BUILTIN)
    assert problems == [] and [(c.method, c.kind, c.body) for c in calls] == [
        ("POST", "redis_acls", {"name": "cache-rw", "acl": "+@all ~cache:*"})
    ]
    assert [(c.method, c.body) for c in plan_roles(SPEC, [])] == [
        ("POST", {"name": "app", "management": "none"}),
        ("POST", {"name": "ops", "management": "cluster_viewer"}),
    ]
    roles = [{"uid": 7, "name": "app", "management": "none"}]
    calls, problems, versions = plan_users(
        SPEC, [], roles, Record(), {"app1": Password("pw-123456", "41")}, set()
    )
    assert problems == [] and versions == {"app1": "41"}
    assert [(c.method, c.kind, c.body) for c in calls] == [
        ("POST", "users", {"name": "app1", "password": "pw-123456", "role_uids": [7]})
    ]
    assert all("pw-123456" not in c.what for c in calls)


def test_drift_is_undone_and_a_new_secret_version_sets_the_password() -> None:
    acls = [*BUILTIN, {"uid": 9, "name": "cache-rw", "acl": "+@read ~*"}]
    assert [(c.method, c.uid, c.body) for c in plan_redis_acls(SPEC, acls)[0]] == [
        ("PUT", 9, {"acl": "+@all ~cache:*"})
    ]
    roles = [
        {"uid": 7, "name": "app", "management": "admin"},
        {"uid": 8, "name": "ops", "management": "cluster_viewer"},
    ]
    assert [(c.uid, c.body) for c in plan_roles(SPEC, roles)] == [(7, {"management": "none"})]
    users = [{"uid": 3, "name": "app1", "role_uids": [8]}]
    record = Record(users={"app1": "41"})
    calls, _, _ = plan_users(SPEC, users, roles, record, {"app1": Password("pw-123456", "41")}, set())
    assert [(c.uid, c.body) for c in calls] == [(3, {"role_uids": [7]})]
    calls, _, versions = plan_users(SPEC, users, roles, record, {"app1": Password("new-pw-789", "42")}, set())
    assert calls[0].body == {"role_uids": [7], "password": "new-pw-789"} and versions == {"app1": "42"}
    assert "new-pw-789" not in calls[0].what
    # the cluster refused the recorded password: someone changed it, it is set again
    users = [{"uid": 3, "name": "app1", "role_uids": [7]}]
    calls, _, _ = plan_users(SPEC, users, roles, record, {"app1": Password("pw-123456", "41")}, {"app1"})
    assert [c.body for c in calls] == [{"password": "pw-123456"}]
    assert plan_users(SPEC, users, roles, record, {"app1": Password("pw-123456", "41")}, set())[0] == []


def test_a_user_waits_for_its_roles_and_its_secret_and_a_predefined_acl_keeps_its_rules() -> None:
    calls, problems, versions = plan_users(
        SPEC, [], [], Record(), {"app1": Password("pw-123456", "1")}, set()
    )
    assert (
        calls == []
        and versions == {}
        and problems == ["managed.users 'app1': the cluster has no role named 'app'"]
    )
    roles = [{"uid": 7, "name": "app", "management": "none"}]
    calls, problems, _ = plan_users(SPEC, [], roles, Record(), {}, set())
    assert calls == [] and problems == [
        "managed.users 'app1': no password in Secret 'app1-pw' key 'password'"
    ]
    redeclared = managed(redisAcls=[{"name": "Read Only", "acl": "+@all ~*"}])
    calls, problems = plan_redis_acls(redeclared, BUILTIN)
    assert calls == [] and "predefined" in problems[0]
    assert plan_redis_acls(managed(redisAcls=[{"name": "Read Only", "acl": "+@read  ~*"}]), BUILTIN) == (
        [],
        [],
    )


def test_deletions_take_only_what_was_managed_users_first() -> None:
    actual = {
        "users": [
            {"uid": 1, "name": "app1"},
            {"uid": 2, "name": "gone"},
            {"uid": 3, "name": "old"},
            {"uid": 4, "name": "someone-elses"},
        ],
        "roles": [{"uid": 7, "name": "app"}, {"uid": 9, "name": "retired"}, {"uid": 10, "name": "theirs"}],
        "redis_acls": [*BUILTIN, {"uid": 11, "name": "old-acl"}],
    }
    record = Record(redis_acls=["old-acl"], roles=["app", "retired"], users={"app1": "1", "gone": "1"})
    calls = plan_deletions(SPEC, record, actual)
    assert [(c.kind, c.uid) for c in calls] == [("users", 2), ("users", 3), ("roles", 9), ("redis_acls", 11)]
    assert all(c.method == "DELETE" for c in calls)


names = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)


@given(
    st.lists(names, max_size=5, unique=True),
    st.lists(names, max_size=5, unique=True),
    st.lists(names, max_size=5, unique=True),
)
def test_nothing_declared_or_recorded_is_ever_changed(
    declared: list[str], recorded: list[str], others: list[str]
) -> None:
    spec = managed(roles=[{"name": n} for n in declared])
    actual_roles = [{"uid": i, "name": n, "management": "admin"} for i, n in enumerate(recorded + others)]
    record = Record(roles=recorded)
    touched = {
        c.uid
        for c in plan_roles(spec, actual_roles) + plan_deletions(spec, record, {"roles": actual_roles})
        if c.uid is not None
    }
    allowed = {r["uid"] for r in actual_roles if r["name"] in set(declared) | set(recorded)}
    assert touched <= allowed


def test_the_spec_is_checked_by_name_and_rule() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        managed(roles=[{"name": "a"}, {"name": "A"}])
    with pytest.raises(ValidationError, match="passwordSecret is required"):
        managed(users=[{"name": "u1"}])
    with pytest.raises(ValidationError, match="reserved"):
        managed(users=[{"name": "default", "passwordSecret": {"name": "s"}}])
    with pytest.raises(ValidationError, match="who a user is"):
        managed(redisAcls=[{"name": "x", "acl": "on >pw +@all"}])
    assert Record.of({"managed": Record(roles=["b", "a"], users={"u": "3"}).status()}) == Record(
        [], ["a", "b"], {"u": "3"}
    )
