"""The node daemon's listeners, against a real loopback cluster, as docs/node-daemon.md,
docs/console.md and the public Redis Enterprise REST API say:

- REST API (9443): HTTPS only; every route needs the cluster's Basic credentials (401 without them
  or with wrong ones) except the documented open ones: readiness, and bootstrap (GET /v1/bootstrap
  only until the node belongs to a cluster; POST /v1/bootstrap/* only does something on an idle node).
  The routes are taken from the app itself (hidden ones too) and checked against the live OpenAPI
  document, on the leader and on a follower (which forwards writes after checking credentials).
- Console (8443): HTTPS only; every API route needs a session; a login with wrong credentials gets
  none; the session cookie is Secure, HttpOnly, SameSite=Strict.
- Metrics (8070): as documented: HTTPS only, with the node's own certificate, no credentials;
  Prometheus samples only, no secret value; a client that connects and sends nothing does not stop
  the others' scrapes.
- TLS: 1.2 at least on 9443, 8443 and 8070 (a TLS 1.0 / 1.1 client is refused, 1.2 and 1.3 accepted).
"""

from __future__ import annotations

import base64
import importlib
import pkgutil
import re
import socket
import ssl
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute
from tests.integration.security.support import SecuredCluster

from recluster.console.app import create_console_app
from recluster.console.sessions import COOKIE
from recluster.local.paths import repo_dir
from recluster.node import routers
from recluster.node.devcluster import LoopbackCluster, LoopbackNode

pytestmark = pytest.mark.integration

API_PORT, CONSOLE_PORT, METRICS_PORT = 9443, 8443, 8070
DOCS = Path(repo_dir()) / "docs"

# Routes of the REST API that answer without credentials, and why (the documentation says so).
OPEN = {
    ("GET", "/v1/ready"): "readiness probe (docs/node-daemon.md: Metrics and readiness)",
    ("GET", "/readyz"): "readiness probe, same handler as /v1/ready",
    ("GET", "/livez"): "liveness probe",
    ("POST", "/v1/bootstrap/{action}"): "bootstrap of an idle node (reference 1.3); a member answers 409",
}
# Open only while the node is not a member (reference 1.1: "Bootstrap exception").
OPEN_UNTIL_MEMBER = {("GET", "/v1/bootstrap")}

BAD_CREDENTIALS = {
    "none": {},
    "wrong password": {"authorization": "Basic " + base64.b64encode(b"admin@recluster.local:nope").decode()},
    "wrong username": None,  # filled per cluster: the right password with another user
    "malformed Basic": {"authorization": "Basic %%%not-base64%%%"},
    "Basic without a colon": {"authorization": "Basic " + base64.b64encode(b"justauser").decode()},
    "a bearer token": {"authorization": "Bearer abc.def.ghi"},
}


def _basic(username: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _credential_variants(cluster: LoopbackCluster) -> dict[str, dict[str, str]]:
    variants = {name: headers for name, headers in BAD_CREDENTIALS.items() if headers is not None}
    variants["wrong username"] = _basic("someone@else", cluster.password)
    return variants


def _rest_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the REST API's routers (every module of
    recluster.node.routers), hidden ones included."""
    found = set()
    for module in pkgutil.iter_modules(routers.__path__):
        router = getattr(importlib.import_module(f"{routers.__name__}.{module.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute):
                found |= {(method, route.path) for method in route.methods}
    return found


def _console_routes() -> set[tuple[str, str]]:
    app = create_console_app(httpx.AsyncClient())
    return {(method, route.path) for route in app.routes if isinstance(route, APIRoute)
            for method in route.methods}


def _concrete(path: str) -> str:
    return path.replace("{uid}", "1").replace("{action}", "create_cluster")


def _send(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]) -> Any:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, url, headers=headers, **body)


async def _refuses_plain_http(host: str, port: int) -> str | None:
    """None when a plain HTTP request gets no HTTP answer (or only an error status without data)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"http://{host}:{port}/v1/cluster")
    except httpx.TransportError:
        return None
    if response.status_code >= 400 and "cluster" not in response.text:
        return None
    return f"plain HTTP on {host}:{port} answered {response.status_code}: {response.text[:200]}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def idle(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LoopbackCluster]:
    """A node daemon that belongs to no cluster (only the daemon runs: nothing is bootstrapped)."""
    node = LoopbackCluster(1, tmp_path_factory.mktemp("idle"))
    try:
        node.start_node(0)
        await node.wait_api(0)
        yield node
    finally:
        node.stop()
        assert node.leftover_pids() == [], "processes left behind after teardown"


# ---- REST API ----------------------------------------------------------------------------------


async def test_rest_api_and_console_refuse_plain_http(secured: SecuredCluster, idle: LoopbackCluster) -> None:
    hosts = [n.addr for n in secured.cluster.nodes] + [idle.nodes[0].addr]
    problems = [p for host in hosts for port in (API_PORT, CONSOLE_PORT)
                if (p := await _refuses_plain_http(host, port))]
    assert not problems, "\n".join(problems)


async def test_every_authenticated_route_refuses_missing_or_wrong_credentials(
        secured: SecuredCluster) -> None:
    cluster = secured.cluster
    routes = _rest_routes()
    async with httpx.AsyncClient(verify=False, timeout=30) as client:  # noqa: S501 - self-signed
        document = (await client.get(f"{cluster.url(0)}/v1/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert documented <= routes, f"documented but not served: {documented - routes}"
    assert set(OPEN) | OPEN_UNTIL_MEMBER <= routes, "a documented open route is gone: update OPEN"
    authenticated = sorted((routes - set(OPEN)) | OPEN_UNTIL_MEMBER)  # a member: bootstrap GET too
    assert len(authenticated) >= 20, authenticated

    _check_declared_security(document)
    leader, follower = 0, 2  # node 0 created the cluster and leads it; writes on 2 are forwarded
    failures = []
    async with httpx.AsyncClient(verify=False, timeout=30) as client:  # noqa: S501
        for index in (leader, follower):
            for method, path in authenticated:
                url = f"{cluster.url(index)}{_concrete(path)}"
                for variant, headers in _credential_variants(cluster).items():
                    response = await _send(client, method, url, headers)
                    body = response.json() if response.headers.get("content-type", "").startswith(
                        "application/json") else {}
                    if (response.status_code != 401 or body.get("error_code") != "unauthorized"
                            or not response.headers.get("www-authenticate", "").startswith("Basic")):
                        failures.append(f"node {index} {method} {path} with {variant}: "
                                        f"{response.status_code} {response.text[:160]}")
        # the control: the same client with the right credentials is let in
        ok = await client.get(f"{cluster.url(follower)}/v1/cluster",
                              headers=_basic(cluster.username, cluster.password))
        assert ok.status_code == 200, ok.text
    assert not failures, f"{len(failures)} requests not refused:\n" + "\n".join(failures)


def _check_declared_security(document: dict[str, Any]) -> None:
    """When the OpenAPI document declares Basic auth, it must say what the API does."""
    if "securitySchemes" not in document.get("components", {}):
        return
    wrong = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            requirements = operation.get("security", document.get("security", []))
            required = bool(requirements) and all(requirements)
            optional = bool(requirements) and not all(requirements)
            if key in OPEN and requirements and required:
                wrong.append(f"{key} is open but declared as needing credentials")
            elif key in OPEN_UNTIL_MEMBER and not optional:
                wrong.append(f"{key} needs credentials only on a member, declared {requirements}")
            elif key not in OPEN and key not in OPEN_UNTIL_MEMBER and not required:
                wrong.append(f"{key} needs credentials, declared {requirements}")
    assert not wrong, "\n".join(wrong)


async def test_bootstrap_on_a_member_changes_nothing_without_credentials(secured: SecuredCluster) -> None:
    cluster = secured.cluster
    async with httpx.AsyncClient(verify=False, timeout=30) as client:  # noqa: S501
        for action in ("create_cluster", "join_cluster"):
            response = await client.post(
                f"{cluster.url(1)}/v1/bootstrap/{action}",
                json={"cluster": {"name": "evil", "nodes": [cluster.nodes[0].addr]},
                      "credentials": {"username": "evil", "password": "evil-password"}})
            assert response.status_code == 409, response.text
            assert response.json()["error_code"] == "already_bootstrapped"
        members = await client.get(f"{cluster.url(1)}/v1/nodes", headers=_basic(cluster.username,
                                                                                  cluster.password))
        assert members.status_code == 200 and len(members.json()) == 3
        refused = await client.get(f"{cluster.url(1)}/v1/cluster", headers=_basic("evil", "evil-password"))
        assert refused.status_code == 401


async def test_an_idle_node_answers_bootstrap_status_and_nothing_else(idle: LoopbackCluster) -> None:
    url = idle.url(0)
    async with httpx.AsyncClient(verify=False, timeout=30) as client:  # noqa: S501
        status = await client.get(f"{url}/v1/bootstrap")
        assert status.status_code == 200, status.text
        assert status.json()["bootstrap_status"]["state"] == "idle"
        for method, path in sorted(_rest_routes() - set(OPEN) - OPEN_UNTIL_MEMBER):
            response = await _send(client, method, f"{url}{_concrete(path)}", {})
            assert response.status_code == 401, (method, path, response.text)
            # with credentials there is nothing to check them against: still no data
            response = await _send(client, method, f"{url}{_concrete(path)}", _basic("a", "b"))
            assert response.status_code == 406, (method, path, response.text)
            assert response.json()["error_code"] == "not_bootstrapped"


# ---- console -------------------------------------------------------------------------------------


async def test_console_api_needs_a_session(secured: SecuredCluster) -> None:
    cluster = secured.cluster
    host = cluster.nodes[1].addr
    base = f"https://{host}:{CONSOLE_PORT}"
    origin = {"origin": base}  # same-origin, so what refuses below is the session check
    session_routes = sorted((m, p) for m, p in _console_routes() if p.startswith("/api/") or p == "/logout")
    assert len(session_routes) >= 6, session_routes
    async with httpx.AsyncClient(verify=False, timeout=30, follow_redirects=False) as client:  # noqa: S501
        failures = []
        for cookie in ({}, {"cookie": f"{COOKIE}=forged-session-id"}):
            for method, path in session_routes:
                response = await _send(client, method, base + _concrete(path), {**origin, **cookie})
                if response.status_code != 401:
                    failures.append(f"{method} {path} {cookie or 'no cookie'}: {response.status_code}")
        assert not failures, "\n".join(failures)

        page = await client.get(base + "/")
        assert page.status_code == 303 and page.headers["location"] == "/login"

        wrong = await client.post(base + "/login", headers=origin,
                                  json={"username": cluster.username, "password": "wrong"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers

        login = await client.post(base + "/login", headers=origin,
                                  json={"username": cluster.username, "password": cluster.password})
        assert login.status_code == 200, login.text
        set_cookie = login.headers["set-cookie"]
        flags = {part.strip().lower() for part in set_cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags, set_cookie
        sid = set_cookie.split(";")[0].split("=", 1)[1]
        client.cookies.clear()
        session = {"cookie": f"{COOKIE}={sid}"}
        whoami = await client.get(base + "/api/session", headers=session)
        assert whoami.status_code == 200 and whoami.json()["username"] == cluster.username
        assert cluster.password not in whoami.text
        # a write without the session's CSRF token is refused even with the session
        write = await client.post(base + "/api/bdbs", headers={**origin, **session}, json={"name": "x"})
        assert write.status_code == 403, write.text
        out = await client.post(base + "/logout", headers={**origin, **session,
                                                            "x-csrf-token": whoami.json()["csrf"]})
        assert out.status_code == 200
        assert (await client.get(base + "/api/session", headers=session)).status_code == 401


# ---- metrics -------------------------------------------------------------------------------------

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? \S+( \d+)?$')
FAMILIES = ("node_", "bdb_", "redis_server_", "recluster_")  # docs/monitoring.md, "Names"


def _own_certificate(node: LoopbackNode) -> ssl.SSLContext:
    """Trusts exactly the node's own (self-signed) certificate, the one its REST API serves."""
    return ssl.create_default_context(cafile=str(node.data_dir / "tls" / "cert.pem"))


async def test_metrics_endpoint_serves_only_metrics_as_documented(secured: SecuredCluster) -> None:
    documented = (DOCS / "node-daemon.md").read_text()
    assert f"https://<addr>:{METRICS_PORT}/metrics" in documented, "where is 8070 documented?"
    assert f"http://<addr>:{METRICS_PORT}" not in documented
    secrets = secured.secret_values()
    for node in secured.cluster.nodes:
        # plain HTTP gets no metrics: the TLS port drops it (an answer could only be an error)
        async with httpx.AsyncClient(timeout=5) as plain:
            try:
                answer = await plain.get(f"http://{node.addr}:{METRICS_PORT}/metrics")
                status, text = answer.status_code, answer.text
            except httpx.TransportError:
                status, text = None, ""
        refused = status is None or (status >= 400 and not any(f in text for f in FAMILIES))
        assert refused, f"plain HTTP on {node.addr}:{METRICS_PORT} answered {status}: {text[:200]}"
        # no credentials, as in Redis Enterprise; the certificate is the node's own (verified here)
        async with httpx.AsyncClient(verify=_own_certificate(node), timeout=30) as client:
            response = await client.get(f"https://{node.addr}:{METRICS_PORT}/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            names = set()
            for line in response.text.splitlines():
                if not line or line.startswith(("# HELP ", "# TYPE ")):
                    continue
                assert SAMPLE.match(line), f"not a Prometheus sample: {line!r}"
                names.add(line.split("{")[0].split(" ")[0])
            assert names and all(n.startswith(FAMILIES) for n in names), sorted(names)
            leaked = [what for what, value in secrets.items() if value in response.text]
            assert not leaked, f"metrics of {node.addr} expose {leaked}"
            assert "pbkdf2" not in response.text  # nor the hash of the admin password


async def test_metrics_answer_while_clients_connect_and_send_nothing(secured: SecuredCluster) -> None:
    """prometheus_client's own TLS server does the handshake in its accept loop: there, one silent
    connection stopped every scrape. Here each connection has its own handshake."""
    node = secured.cluster.nodes[0]
    silent = [socket.create_connection((node.addr, METRICS_PORT), timeout=5) for _ in range(3)]
    try:
        async with httpx.AsyncClient(verify=_own_certificate(node), timeout=5) as client:
            response = await client.get(f"https://{node.addr}:{METRICS_PORT}/metrics")
        assert response.status_code == 200 and "node_up" in response.text
    finally:
        for sock in silent:
            sock.close()


# ---- TLS versions --------------------------------------------------------------------------------


def _client_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers exactly `version` (old versions need OpenSSL's security level 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = version
        context.maximum_version = version
    return context


def _handshake(host: str, port: int, version: ssl.TLSVersion) -> str:
    """The negotiated version, or the reason the handshake failed (prefixed 'refused: ')."""
    try:
        with socket.create_connection((host, port), timeout=5) as raw, \
                _client_context(version).wrap_socket(raw) as tls:
            return str(tls.version())
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc}"


@pytest.fixture(scope="module")
def old_tls_possible(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Skip unless this machine's OpenSSL lets a client offer TLS 1.0/1.1: proved against a local
    server that accepts them, so a refusal by the node is the node's."""
    from recluster.node.tls import ensure_certificate

    cert, key = ensure_certificate(tmp_path_factory.mktemp("tls"), ["127.0.0.1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.set_ciphers("DEFAULT:@SECLEVEL=0")
        server.minimum_version = ssl.TLSVersion.TLSv1
        server.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
                with server.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        results = {v.name: _handshake("127.0.0.1", port, v)
                   for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)}
    finally:
        listener.close()
        thread.join(timeout=5)
    if any(r.startswith("refused") for r in results.values()):
        pytest.skip(f"this OpenSSL cannot offer TLS 1.0/1.1 even to a server that accepts it: {results}")
    yield


@pytest.mark.parametrize("port", [API_PORT, CONSOLE_PORT, METRICS_PORT],
                         ids=["rest-api", "console", "metrics"])
@pytest.mark.parametrize(("version", "accepted"), [
    (ssl.TLSVersion.TLSv1, False),
    (ssl.TLSVersion.TLSv1_1, False),
    (ssl.TLSVersion.TLSv1_2, True),
    (ssl.TLSVersion.TLSv1_3, True),
], ids=["tls1.0-refused", "tls1.1-refused", "tls1.2-accepted", "tls1.3-accepted"])
async def test_tls_minimum_version_is_1_2(secured: SecuredCluster, old_tls_possible: None, port: int,
                                          version: ssl.TLSVersion, accepted: bool) -> None:
    result = _handshake(secured.cluster.nodes[0].addr, port, version)
    if accepted:
        assert not result.startswith("refused"), result
    else:
        assert result.startswith("refused"), f"{version.name} accepted on {port}: negotiated {result}"
