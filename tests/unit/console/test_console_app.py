"""The console app in-process against a fake REST API (httpx.MockTransport): login and its cookie,
CSRF and origin checks, the snapshot, and API errors passed to the form beside their field."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from recluster.console.app import create_console_app
from recluster.console.sessions import (
    COOKIE,
    IDLE_S,
    REFRESH_S,
    LocalRevocations,
    RevocationUnavailable,
    SessionKeys,
    SessionTokens,
)

pytestmark = pytest.mark.unit

USER, PASSWORD = "admin@cluster", "s3cret-password"
ORIGIN = "https://testserver"
NODES = [{"uid": 1, "name": "n1", "addr": "127.0.0.11", "status": "active", "total_memory": 2**30,
          "ports": {"metrics": 8070}},
         {"uid": 2, "name": "n2", "addr": "127.0.0.12", "status": "down", "total_memory": 2**30}]
BDB = {"uid": 1, "name": "orders", "status": "active", "port": 10000, "memory_size": 2**26,
       "replication": True, "endpoints": [{"dns_name": "n1", "port": 10000}]}
SHARDS = [{"uid": "1", "bdb_uid": 1, "node_uid": "1", "role": "master", "status": "active"},
          {"uid": "2", "bdb_uid": 1, "node_uid": "2", "role": "slave", "status": "inactive"}]
METRICS = ('# TYPE node_available_memory gauge\nnode_available_memory{cluster="c",node="1"} 536870912\n'
           '# TYPE recluster_node_uptime_seconds gauge\n'
           'recluster_node_uptime_seconds{cluster="c",node="1"} 90\n')


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if auth != "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode():
            return httpx.Response(401, json={"error_code": "unauthorized",
                                             "message": "wrong username or password"})
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        path = request.url.path
        if request.method == "POST" and path == "/v1/bdbs":
            if body["name"] == "orders":
                return httpx.Response(409, json={"error_code": "name_exists", "field": "name",
                                                 "message": "'name': a database named 'orders' exists"})
            return httpx.Response(200, json={**BDB, "uid": 2, "name": body["name"], "status": "pending"})
        answers: dict[str, Any] = {
            "/v1/cluster": {"name": "cluster.local", "software_version": "0.1.0", "master_node": 1,
                            "quorum": 2},
            "/v1/nodes": NODES, "/v1/bdbs": [BDB], "/v1/shards": SHARDS,
            "/v1/actions": {"actions": [], "state-machines": []},
            "/v1/bdbs/stats/last/1": {"1": {"used_memory": 2**20, "no_of_keys": 7,
                                            "instantaneous_ops_per_sec": 3}},
        }
        if path in answers:
            return httpx.Response(200, json=answers[path])
        return httpx.Response(404, json={"error_code": "not_found", "message": "no"})


def metrics_endpoint(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=METRICS)


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def client(fake: FakeApi) -> TestClient:
    api = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="https://node:9443")
    metrics = httpx.AsyncClient(transport=httpx.MockTransport(metrics_endpoint))
    return TestClient(create_console_app(api, metrics_http=metrics), base_url=ORIGIN)


def log_in(client: TestClient) -> str:
    answer = client.post("/login", json={"username": USER, "password": PASSWORD}, headers={"origin": ORIGIN})
    assert answer.status_code == 200
    csrf: str = client.get("/api/session").json()["csrf"]
    return csrf


def test_login_page_and_redirect_without_a_session(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    page = client.get("/login")
    assert page.status_code == 200 and '<label for="password">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/api/snapshot").status_code == 401
    assert client.get("/static/console.js").status_code == 200


def test_wrong_credentials_say_so(client: TestClient) -> None:
    answer = client.post("/login", json={"username": USER, "password": "nope"}, headers={"origin": ORIGIN})
    assert answer.status_code == 401 and answer.json()["message"] == "wrong username or password"
    assert COOKIE not in answer.headers.get("set-cookie", "")


def test_repeated_wrong_logins_wait(client: TestClient) -> None:
    wrong = {"username": USER, "password": "nope"}
    codes = [client.post("/login", json=wrong, headers={"origin": ORIGIN}).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    right = {"username": USER, "password": PASSWORD}
    answer = client.post("/login", json=right, headers={"origin": ORIGIN})
    assert answer.status_code == 429 and "try again" in answer.json()["message"]


def test_session_cookie_flags_and_the_password_never_sent_back(client: TestClient) -> None:
    answer = client.post("/login", json={"username": USER, "password": PASSWORD}, headers={"origin": ORIGIN})
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith(COOKIE.lower() + "=")
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in cookie
    for path in ("/", "/api/session", "/api/snapshot"):
        assert PASSWORD not in client.get(path).text


def test_writes_need_the_csrf_token_and_the_same_origin(client: TestClient, fake: FakeApi) -> None:
    csrf = log_in(client)
    form = {"name": "cache", "memory_mb": "1"}
    assert client.post("/api/bdbs", json=form, headers={"origin": ORIGIN}).status_code == 403
    evil = {"origin": "https://evil.example", "x-csrf-token": csrf}
    assert client.post("/api/bdbs", json=form, headers=evil).status_code == 403
    creds = {"username": USER, "password": PASSWORD}
    assert client.post("/login", json=creds, headers=evil).status_code == 403
    assert not [c for c in fake.calls if c[0] == "POST"]
    answer = client.post("/api/bdbs", json=form, headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert answer.status_code == 200 and answer.json()["uid"] == 2
    assert ("POST", "/v1/bdbs", {"name": "cache", "memory_size": 2**20, "replication": False}) in fake.calls


def test_api_refusal_is_shown_beside_the_field(client: TestClient) -> None:
    csrf = log_in(client)
    answer = client.post("/api/bdbs", json={"name": "orders", "memory_mb": "1"},
                         headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert answer.status_code == 409
    assert answer.json()["fields"] == {"name": "'name': a database named 'orders' exists"}
    local = client.post("/api/bdbs", json={"name": "x", "memory_mb": "lots"},
                        headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert local.status_code == 400 and set(local.json()["fields"]) == {"memory_mb"}


def test_snapshot_combines_cluster_nodes_databases_stats_and_metrics(client: TestClient) -> None:
    log_in(client)
    snap = client.get("/api/snapshot").json()
    assert snap["overview"]["name"] == "cluster.local" and snap["overview"]["leader"] == "n1"
    assert snap["overview"]["health"]["text"] == "no majority: 1 of 2 nodes up, 2 needed"
    n1, n2 = snap["nodes"]
    assert n1["memory_free"] == 2**29 and n1["uptime_text"] == "1m 30s"
    assert n1["shards_text"] == "orders (master)"
    assert n2["uptime"] is None  # a down node's metrics are not read
    (orders,) = snap["bdbs"]
    assert orders["endpoint"] == "n1:10000" and orders["keys"] == 7 and orders["ops"] == 3
    assert [c["samples"] for c in orders["charts"]] == [1, 1]


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = log_in(client)
    answer = client.post("/logout", headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert answer.status_code == 200
    assert client.get("/api/session").status_code == 401


def two_nodes(fake: FakeApi, tokens: SessionTokens) -> tuple[TestClient, TestClient]:
    """Two consoles of one cluster: the same session keys and record of logouts, each its own app."""
    def app() -> TestClient:
        api = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url="https://node:9443")
        metrics = httpx.AsyncClient(transport=httpx.MockTransport(metrics_endpoint))
        return TestClient(create_console_app(api, metrics_http=metrics, tokens=tokens), base_url=ORIGIN)
    return app(), app()


def test_a_session_is_valid_on_every_node_and_a_logout_ends_it_on_all(fake: FakeApi) -> None:
    keys = SessionKeys(b"shared-ccs-password", b"cluster.local")
    a, b = two_nodes(fake, SessionTokens(lambda: keys, LocalRevocations(time.time)))
    csrf = log_in(a)
    token = a.cookies[COOKIE]
    assert PASSWORD not in token and USER not in token
    b.cookies.set(COOKIE, token)
    served = b.get("/api/session").json()
    assert (served["username"], served["csrf"]) == (USER, csrf)
    assert b.get("/api/snapshot").status_code == 200
    form = {"name": "cache", "memory_mb": "1"}
    assert b.post("/api/bdbs", json=form, headers={"origin": ORIGIN, "x-csrf-token": csrf}).status_code == 200
    assert b.post("/logout", headers={"origin": ORIGIN, "x-csrf-token": csrf}).status_code == 200
    for node in (a, b):
        node.cookies.set(COOKIE, token)
        assert node.get("/api/session").status_code == 401
        assert node.get("/", follow_redirects=False).headers["location"] == "/login"


def test_an_active_sessions_cookie_is_renewed_and_an_idle_one_expires(fake: FakeApi) -> None:
    now = [1_000_000.0]
    keys = SessionKeys(b"shared-ccs-password")
    tokens = SessionTokens(lambda: keys, LocalRevocations(lambda: now[0]))
    client, _ = two_nodes(fake, tokens)
    client.app.state.console.clock = lambda: now[0]  # type: ignore[attr-defined]
    log_in(client)
    first = client.cookies[COOKIE]
    now[0] += REFRESH_S - 1
    assert COOKIE not in client.get("/api/session").headers.get("set-cookie", "")
    now[0] += 2
    answer = client.get("/api/session")
    renewed = answer.headers["set-cookie"]
    assert renewed.startswith(COOKIE + "=")
    flags = {flag.strip() for flag in renewed.lower().split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert client.cookies[COOKIE] != first
    now[0] += IDLE_S - 1
    assert client.get("/api/session").status_code == 200  # the renewed cookie's idle clock
    client.cookies.set(COOKIE, first)
    assert client.get("/api/session").status_code == 401  # the first one is idle for longer


def test_a_logout_the_cluster_cannot_record_is_refused_and_the_session_kept(fake: FakeApi) -> None:
    class Unrecordable(LocalRevocations):
        async def revoke(self, sid: str, until: float) -> None:
            raise RevocationUnavailable("only 0 of the 1 nodes the cluster needs acknowledged it")

    keys = SessionKeys(b"shared-ccs-password")
    client, _ = two_nodes(fake, SessionTokens(lambda: keys, Unrecordable(time.time)))
    csrf = log_in(client)
    answer = client.post("/logout", headers={"origin": ORIGIN, "x-csrf-token": csrf})
    assert answer.status_code == 503 and "try again" in answer.json()["message"]
    assert "set-cookie" not in answer.headers
    assert client.get("/api/session").status_code == 200


def test_no_login_before_the_node_is_in_a_cluster(fake: FakeApi) -> None:
    client, _ = two_nodes(fake, SessionTokens(lambda: None, LocalRevocations(time.time)))
    answer = client.post("/login", json={"username": USER, "password": PASSWORD}, headers={"origin": ORIGIN})
    assert answer.status_code == 503 and "not in a cluster" in answer.json()["message"]
