"""A console session made on one node is served by every node of a real 3-node loopback cluster, as
behind the `rec-ui` Service (no session affinity): 20 requests spread over the three consoles, reads
and writes (with the CSRF token one node gave), all served; a logout on one node is then refused on
all three; forged, altered, expired and other clusters' tokens are refused everywhere."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from recluster.console.cluster_sessions import ClusterSecret
from recluster.console.sessions import COOKIE, IDLE_S, MAX_AGE_S, Session, SessionKeys
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

CONSOLE_PORT = 8443


def url(cluster: LoopbackCluster, index: int) -> str:
    return f"https://{cluster.nodes[index].addr}:{CONSOLE_PORT}"


def with_token(token: str, **headers: str) -> dict[str, str]:
    return {"cookie": f"{COOKIE}={token}", **headers}


async def status_everywhere(http: httpx.AsyncClient, cluster: LoopbackCluster, token: str) -> list[int]:
    return [(await http.get(url(cluster, i) + "/api/session", headers=with_token(token))).status_code
            for i in range(cluster.size)]


async def test_one_login_served_by_every_node_and_a_logout_ends_it_everywhere(
        cluster: LoopbackCluster) -> None:
    async with httpx.AsyncClient(verify=False, timeout=30) as http:  # noqa: S501 - self-signed nodes
        login = await http.post(url(cluster, 0) + "/login", headers={"origin": url(cluster, 0)},
                                json={"username": cluster.username, "password": cluster.password})
        assert login.status_code == 200, login.text
        token = login.cookies[COOKIE]
        assert cluster.password not in token and cluster.username not in token
        csrf = (await http.get(url(cluster, 0) + "/api/session", headers=with_token(token))).json()["csrf"]

        served: list[tuple[int, str, int]] = []
        for i in range(20):  # round robin over the nodes, as the Service spreads new connections
            node, path = i % 3, ("/api/session", "/api/snapshot", "/")[(i // 3) % 3]
            answer = await http.get(url(cluster, node) + path, headers=with_token(token),
                                    follow_redirects=False)
            served.append((node, path, answer.status_code))
            if path == "/api/session":
                session = answer.json()
                assert (session["username"], session["csrf"], session["can"]["level"]) == (
                    cluster.username, csrf, "admin")
            if COOKIE in answer.cookies:  # a renewed cookie (after a minute): the browser keeps it
                token = answer.cookies[COOKIE]
        assert [s for s in served if s[2] != 200] == [], served
        assert {(node, path) for node, path, _ in served} == {
            (n, p) for n in range(3) for p in ("/api/session", "/api/snapshot", "/")}

        # writes: node 0's CSRF token is every node's; the form reaches the view (400: its own check)
        bad_form = {"name": "x", "memory_mb": "lots"}
        for i in (1, 2):
            headers = with_token(token, origin=url(cluster, i))
            refused = await http.post(url(cluster, i) + "/api/bdbs", json=bad_form, headers=headers)
            assert refused.status_code == 403, refused.text  # without the token
            checked = await http.post(url(cluster, i) + "/api/bdbs", json=bad_form,
                                      headers={**headers, "x-csrf-token": csrf})
            assert checked.status_code == 400 and set(checked.json()["fields"]) == {"memory_mb"}, checked.text

        logout = await http.post(url(cluster, 1) + "/logout",
                                 headers=with_token(token, origin=url(cluster, 1), **{"x-csrf-token": csrf}))
        assert logout.status_code == 200, logout.text
        assert await status_everywhere(http, cluster, token) == [401, 401, 401]
        for i in range(cluster.size):
            page = await http.get(url(cluster, i) + "/", headers=with_token(token), follow_redirects=False)
            assert (page.status_code, page.headers.get("location")) == (303, "/login")
            headers = with_token(token, origin=url(cluster, i), **{"x-csrf-token": csrf})
            write = await http.post(url(cluster, i) + "/api/bdbs", json=bad_form, headers=headers)
            assert write.status_code == 401


async def test_forged_altered_and_expired_tokens_are_refused_on_every_node(cluster: LoopbackCluster) -> None:
    # the cluster's keys, derived as a node derives them from its membership file (the test may read it)
    keys = ClusterSecret(cluster.nodes[0].data_dir).keys()
    assert keys is not None
    now = time.time()

    def sealed(sid: str, issued: float, seen: float, sealer: SessionKeys = keys) -> str:
        return sealer.seal(Session(sid, cluster.username, cluster.password, issued=issued, seen=seen))

    fresh = sealed("fresh", now, now)
    raw = bytearray(base64.urlsafe_b64decode(fresh + "=" * (-len(fresh) % 4)))
    raw[-1] ^= 0x01
    refused: dict[str, Any] = {
        "idle": sealed("idle", now - 3600, now - IDLE_S - 5),
        "too old": sealed("old", now - MAX_AGE_S - 5, now - 5),
        "altered": base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(),
        "another key": sealed("forged", now, now, SessionKeys(b"a guessed secret", b"cluster.local")),
        "another cluster's": sealed("other", now, now, SessionKeys(b"other ccs password", b"cluster.local")),
        "not a token": "forged-session-id",
    }
    async with httpx.AsyncClient(verify=False, timeout=30) as http:  # noqa: S501 - self-signed nodes
        assert await status_everywhere(http, cluster, fresh) == [200, 200, 200]  # the test's tokens are right
        for what, token in refused.items():
            assert await status_everywhere(http, cluster, token) == [401, 401, 401], what
    for node in cluster.nodes:
        log = node.log_file.read_text(errors="replace")
        assert cluster.password not in log and fresh not in log
