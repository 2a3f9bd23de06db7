"""The users, roles and Redis ACLs views and forms of the console: rows with names, what a level may
do, form bodies with the console's own checks, and the REST API's errors beside the field."""

from __future__ import annotations

import pytest

from recluster.console import access_views as av

pytestmark = pytest.mark.unit

ROLES = [{"uid": 1, "name": "readers", "management": "db_viewer"},
         {"uid": 2, "name": "ops", "management": "db_member"}]
ACLS = [{"uid": 1, "name": "Full Access", "acl": "+@all ~*"},
        {"uid": 2, "name": "Read Only", "acl": "+@read ~*"},
        {"uid": 4, "name": "cache-rw", "acl": "+@all ~cache:*"}]
BDBS = [{"uid": 3, "name": "orders", "roles_permissions": [{"role_uid": 1, "redis_acl_uid": 2},
                                                          {"role_uid": 2, "redis_acl_uid": 4}]},
        {"uid": 5, "name": "audit", "roles_permissions": [{"role_uid": 1, "redis_acl_uid": 1}]},
        {"uid": 6, "name": "empty"}]


def test_the_level_is_read_from_the_rest_apis_refusal() -> None:
    refusal = {"error_code": "insufficient_permissions",
               "message": "the user's role (db_viewer) does not allow GET /v1/users"}
    assert av.level_from_refusal(403, refusal) == "db_viewer"
    assert av.level_from_refusal(403, {"message": "the user's role (superuser) does not allow"}) is None
    assert av.level_from_refusal(404, refusal) is None
    assert av.level_from_refusal(403, "not json") is None


@pytest.mark.parametrize(("level", "manage", "write"), [
    ("admin", True, True), ("cluster_member", False, True), ("db_member", False, True),
    ("cluster_viewer", False, False), ("db_viewer", False, False), ("none", False, False),
    (None, False, True),  # not known: the REST API decides
])
def test_capabilities_follow_the_rest_apis_levels(level: str | None, manage: bool, write: bool) -> None:
    can = av.capabilities(level)
    assert (can["manage_access"], can["write_databases"]) == (manage, write)
    assert can["level"] == (level or "unknown")


def test_user_rows_name_roles_and_level_never_a_password() -> None:
    users = [{"uid": 7, "name": "zed", "email": "", "role_uids": [], "role": "none"},
             {"uid": 3, "name": "ann", "email": "ann@example.org", "role_uids": [2, 1, 9],
              "role": "db_member", "password_issue_date": "2025-01-01"}]
    rows = av.user_rows(users, ROLES)
    assert [r["name"] for r in rows] == ["ann", "zed"]
    assert rows[0]["roles_text"] == "ops, readers, role 9" and rows[0]["level"] == "db_member"
    assert rows[1]["roles_text"] == "none" and rows[1]["email"] == ""
    assert all("password" not in key for row in rows for key in row)


def test_roles_show_which_databases_give_them_which_acl() -> None:
    rows = {r["name"]: r for r in av.role_rows(ROLES, BDBS, ACLS)}
    assert rows["readers"]["databases"] == ["audit: Full Access", "orders: Read Only"]
    assert rows["ops"]["databases_text"] == "orders: cache-rw"
    assert rows["readers"]["management"] == "db_viewer"


def test_a_databases_permissions_by_name_or_by_uid_when_roles_are_unreadable() -> None:
    named = av.permission_rows(BDBS, ROLES, ACLS)
    assert named["3"] == [{"role_uid": 1, "role": "readers", "redis_acl_uid": 2, "acl": "Read Only"},
                          {"role_uid": 2, "role": "ops", "redis_acl_uid": 4, "acl": "cache-rw"}]
    assert named["6"] == []
    assert av.permission_rows(BDBS, None, ACLS)["5"][0]["role"] == "role 1"


def test_predefined_acls_are_marked() -> None:
    rows = av.acl_rows(ACLS)
    assert [(r["name"], r["predefined"]) for r in rows] == [
        ("Full Access", True), ("Read Only", True), ("cache-rw", False)]


def test_user_form_bodies_check_the_password_rule_and_the_roles() -> None:
    body, errors = av.user_create_body({"name": " ann ", "email": "a@b.c", "password": "long-enough-1",
                                        "role_uids": ["2", "1", "2"]})
    assert errors == {} and body == {"name": "ann", "email": "a@b.c", "password": "long-enough-1",
                                     "role_uids": [1, 2]}
    body, errors = av.user_create_body({"name": "ann", "password": "short", "role_uids": ["x"]})
    assert errors == {"password": "the password must be 8-512 characters",
                      "role_uids": "choose roles from the list"}
    assert "short" not in str(errors)
    update = {"email": "n@e.w", "role_uids": []}
    assert av.user_update_body(update) == (update, {})
    assert av.user_password_body({"password": " spaces kept "})[0] == {"password": " spaces kept "}


def test_own_password_needs_the_old_one_and_a_new_valid_different_one() -> None:
    form = {"old_password": "old-password", "new_password": "new-password"}
    body, errors = av.own_password_body(form, "ann")
    assert errors == {} and body == {"username": "ann", "old_password": "old-password",
                                     "new_password": "new-password"}
    assert av.own_password_body({"new_password": "new-password"}, "ann")[1] == {
        "old_password": "enter your current password"}
    short = av.own_password_body({"old_password": "x", "new_password": "y"}, "ann")
    assert "8-512" in short[1]["new_password"]
    same = av.own_password_body({"old_password": "same-password", "new_password": "same-password"}, "ann")
    assert same[1] == {"new_password": "the new password must differ from the current one"}


def test_role_acl_and_permission_forms() -> None:
    role = {"name": "ops", "management": "db_member"}
    assert av.role_body(role) == (role, {})
    assert av.role_body({"name": "ops", "management": "root"})[1]["management"].startswith("choose one of")
    assert av.role_body({"name": "x"})[0]["management"] == "none"
    assert av.acl_body({"name": "rw", "acl": " +@all ~c:* "}, True) == ({"acl": "+@all ~c:*", "name": "rw"},
                                                                       {})
    assert av.acl_body({"name": "ignored", "acl": "+@read"}, False) == ({"acl": "+@read"}, {})
    body, errors = av.permissions_body({"roles_permissions": [
        {"role_uid": "1", "redis_acl_uid": "2"}, {"role_uid": "", "redis_acl_uid": ""}]})
    assert body == {"roles_permissions": [{"role_uid": 1, "redis_acl_uid": 2}]} and errors == {}
    _, errors = av.permissions_body({"roles_permissions": [{"role_uid": "1", "redis_acl_uid": ""}]})
    assert errors == {"roles_permissions": "row 1: choose both a role and a Redis ACL"}


def test_api_errors_go_beside_the_named_field_and_a_refusal_by_role_says_so() -> None:
    conflict = {"error_code": "name_exists", "message": "'name': a user named 'ann' exists", "field": "name"}
    av_fields = ("name", "role_uids")
    assert av.access_errors(409, conflict, av_fields)["fields"] == {
        "name": "'name': a user named 'ann' exists"}
    nested = {"error_code": "role_not_exist", "message": "role_uids: no role has uid 9",
              "field": "role_uids.0"}
    assert av.access_errors(400, nested, av_fields)["fields"] == {"role_uids": "role_uids: no role has uid 9"}
    refused = {"error_code": "insufficient_permissions",
               "message": "the user's role (db_viewer) does not allow POST /v1/users"}
    shown = av.access_errors(403, refused, av_fields)
    assert shown["message"].startswith("Your role (db_viewer) does not allow this") and shown["fields"] == {}
    assert av.access_errors(500, None, av_fields)["message"] == "the request failed (HTTP 500)"
