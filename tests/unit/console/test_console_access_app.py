"""The console's users, roles and Redis ACLs calls in-process against a fake REST API that authorises
by management level as the node's does (403 `insufficient_permissions` naming the level): what each
level is offered, refusals as messages, errors beside the field, passwords never sent back, and a
session that keeps working after its user changed its password."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from recluster.console.app import create_console_app
from recluster.console.sessions import COOKIE

pytestmark = pytest.mark.unit

ORIGIN = "https://testserver"
ADMIN = ("admin@cluster", "admin-password")
ADMIN_ONLY_READS = ("/v1/users", "/v1/roles")


class FakeAccessApi:
    """Users with levels; the paths and rules of node/access.py's may_call, in miniature."""

    def __init__(self) -> None:
        self.passwords = {ADMIN[0]: ADMIN[1], "viewer": "viewer-password", "member": "member-password",
                          "nobody": "nobody-password"}
        self.levels = {ADMIN[0]: "admin", "viewer": "db_viewer", "member": "db_member", "nobody": "none"}
        self.users: list[dict[str, Any]] = [{"uid": 1, "name": "viewer", "email": "", "role_uids": [1],
                                             "role": "db_viewer"}]
        self.roles = [{"uid": 1, "name": "viewers", "management": "db_viewer"}]
        self.bdbs = [{"uid": 1, "name": "orders", "authentication_redis_pass": "db-secret",
                      "roles_permissions": [{"role_uid": 1, "redis_acl_uid": 2}]}]
        self.sent: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        user, _, password = base64.b64decode(request.headers["authorization"][6:]).decode().partition(":")
        if self.passwords.get(user) != password:
            return httpx.Response(401, json={"error_code": "unauthorized",
                                             "message": "wrong username or password"})
        level, method, path = self.levels[user], request.method, request.url.path
        body = json.loads(request.content) if request.content else None
        reads = method == "GET" and not path.startswith(ADMIN_ONLY_READS)
        member_writes = level == "db_member" and path.startswith("/v1/bdbs")
        allowed = (level == "admin" or path == "/v1/users/password"
                   or (level != "none" and (reads or member_writes)))
        if not allowed:
            refusal = f"the user's role ({level}) does not allow {method} {path}"
            return httpx.Response(403, json={"error_code": "insufficient_permissions", "message": refusal})
        self.sent.append((method, path, body))
        return self.answer(method, path, body)

    def answer(self, method: str, path: str, body: Any) -> httpx.Response:
        if path == "/v1/users/password":
            if self.passwords.get(body["username"]) != body["old_password"]:
                return httpx.Response(401, json={"error_code": "unauthorized",
                                                 "message": "wrong username or old password"})
            self.passwords[body["username"]] = body["new_password"]
            return httpx.Response(200, json={})
        if method == "POST" and path == "/v1/users":
            if any(u["name"] == body["name"] for u in self.users):
                return httpx.Response(409, json={"error_code": "name_exists", "field": "name",
                                                 "message": f"'name': a user named '{body['name']}' exists"})
            user = {"uid": len(self.users) + 1, "name": body["name"], "email": body["email"],
                    "role_uids": body["role_uids"], "role": "db_viewer"}
            self.users.append(user)
            return httpx.Response(200, json=user)
        if method == "PUT" and path.startswith("/v1/users/"):
            user = next(u for u in self.users if u["uid"] == int(path.rsplit("/", 1)[1]))
            if "password" in body:
                self.passwords[user["name"]] = body["password"]
            return httpx.Response(200, json=user)
        if method == "PUT" and path == "/v1/bdbs/1":
            self.bdbs[0].update(body)
            return httpx.Response(200, json=self.bdbs[0])
        reads = {"/v1/users": self.users, "/v1/roles": self.roles, "/v1/bdbs": self.bdbs, "/v1/cluster": {},
                 "/v1/redis_acls": [{"uid": 1, "name": "Full Access", "acl": "+@all ~*"},
                                    {"uid": 2, "name": "Read Only", "acl": "+@read ~*"}]}
        if method == "GET" and path in reads:
            return httpx.Response(200, json=reads[path])
        return httpx.Response(200, json={"uid": 9, "name": (body or {}).get("name", "")})


@pytest.fixture
def fake() -> FakeAccessApi:
    return FakeAccessApi()


@pytest.fixture
def client(fake: FakeAccessApi) -> TestClient:
    api = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="https://node:9443")
    return TestClient(create_console_app(api), base_url=ORIGIN)


def log_in(client: TestClient, username: str, password: str) -> dict[str, str]:
    answer = client.post("/login", json={"username": username, "password": password},
                         headers={"origin": ORIGIN})
    assert answer.status_code == 200, answer.text
    return {"origin": ORIGIN, "x-csrf-token": client.get("/api/session").json()["csrf"]}


def test_the_admin_sees_users_roles_and_permissions_by_name(client: TestClient) -> None:
    log_in(client, *ADMIN)
    assert client.get("/api/session").json()["can"]["manage_access"] is True
    access = client.get("/api/access").json()
    assert access["can"] == {"level": "admin", "level_text": "admin: everything", "manage_access": True,
                             "write_databases": True}
    assert [(u["name"], u["roles_text"]) for u in access["users"]] == [("viewer", "viewers")]
    assert access["roles"][0]["databases_text"] == "orders: Read Only"
    assert access["permissions"]["1"][0]["role"] == "viewers" and access["refused"] is None
    assert "db-secret" not in json.dumps(access)


def test_a_viewer_is_offered_reads_only_and_a_write_is_refused_with_a_message(client: TestClient) -> None:
    headers = log_in(client, "viewer", "viewer-password")
    assert client.get("/api/session").json()["can"]["level"] == "db_viewer"
    access = client.get("/api/access").json()
    assert access["can"]["manage_access"] is False and access["can"]["write_databases"] is False
    assert access["users"] is None and access["roles"] is None
    assert access["refused"].startswith("Your role (db_viewer) does not allow managing users")
    assert access["permissions"]["1"][0]["role"] == "role 1"  # roles are the admin's to read
    refused = client.post("/api/users", json={"name": "x", "password": "long-enough"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["message"].startswith("Your role (db_viewer)")
    refused = client.put("/api/bdbs/1/permissions", json={"roles_permissions": []}, headers=headers)
    assert refused.status_code == 403


def test_a_member_may_change_a_databases_permissions(client: TestClient, fake: FakeAccessApi) -> None:
    headers = log_in(client, "member", "member-password")
    assert client.get("/api/access").json()["can"]["write_databases"] is True
    form = {"roles_permissions": [{"role_uid": "1", "redis_acl_uid": "1"},
                                  {"role_uid": "", "redis_acl_uid": ""}]}
    answer = client.put("/api/bdbs/1/permissions", json=form, headers=headers)
    assert answer.status_code == 200 and "db-secret" not in answer.text
    sent = {"roles_permissions": [{"role_uid": 1, "redis_acl_uid": 1}]}
    assert fake.sent[-1] == ("PUT", "/v1/bdbs/1", sent)


def test_a_role_of_level_none_cannot_log_in_and_is_told_why(client: TestClient) -> None:
    answer = client.post("/login", json={"username": "nobody", "password": "nobody-password"},
                         headers={"origin": ORIGIN})
    assert answer.status_code == 403 and "does not give access to the console" in answer.json()["message"]
    assert COOKIE not in answer.headers.get("set-cookie", "")


def test_user_forms_errors_beside_the_field_and_no_password_sent_back(client: TestClient,
                                                                      fake: FakeAccessApi) -> None:
    headers = log_in(client, *ADMIN)
    short = client.post("/api/users", json={"name": "ann", "password": "short"}, headers=headers)
    assert short.status_code == 400
    assert short.json()["fields"] == {"password": "the password must be 8-512 characters"}
    assert ("POST", "/v1/users") not in [(m, p) for m, p, _ in fake.sent]  # not sent at all
    form = {"name": "viewer", "email": "", "password": "long-enough-pw", "role_uids": ["1"]}
    taken = client.post("/api/users", json=form, headers=headers)
    assert taken.status_code == 409
    assert taken.json()["fields"] == {"name": "'name': a user named 'viewer' exists"}
    made = client.post("/api/users", json={**form, "name": "ann"}, headers=headers)
    assert made.status_code == 200 and "long-enough-pw" not in made.text
    assert fake.sent[-1][2]["password"] == "long-enough-pw"
    changed = client.put("/api/users/2/password", json={"password": "another-password"}, headers=headers)
    assert changed.status_code == 200 and "another-password" not in changed.text
    assert fake.passwords["ann"] == "another-password"


def test_changing_my_password_keeps_the_session_working(client: TestClient, fake: FakeAccessApi) -> None:
    headers = log_in(client, "viewer", "viewer-password")
    old_cookie = client.cookies[COOKIE]
    wrong = client.post("/api/password", json={"old_password": "not-it", "new_password": "new-password-1"},
                        headers=headers)
    assert wrong.status_code == 400
    assert wrong.json()["fields"] == {"old_password": "the current password is wrong"}
    assert client.get("/api/session").status_code == 200  # a wrong old password is not a dead session
    form = {"old_password": "viewer-password", "new_password": "new-password-1"}
    answer = client.post("/api/password", json=form, headers=headers)
    assert answer.status_code == 200 and "new-password-1" not in answer.text
    assert fake.passwords["viewer"] == "new-password-1"
    new_cookie = answer.cookies.get(COOKIE)
    assert new_cookie and new_cookie != old_cookie and "new-password-1" not in new_cookie
    client.cookies.set(COOKIE, new_cookie)
    session = client.get("/api/session")
    assert session.status_code == 200
    assert session.json()["csrf"] == headers["x-csrf-token"]  # the same session
    assert client.get("/api/access").status_code == 200  # the REST API takes the new password
    client.cookies.set(COOKIE, old_cookie)  # the cookie from before the change holds the old password
    assert client.get("/api/access").status_code == 401
