"""The REST API and the console write an access log line per request (recluster.logs.AccessLog) that
holds no secret: a request with Basic credentials, a cookie and a token in its query string, and a
console login with the password in its body, each leave a line with the method, path and status, and
none of those values, in the node's log."""

from __future__ import annotations

import base64
import os
import ssl
import time

import httpx
import pytest

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

CONSOLE_PORT = 8443


def wait_for_lines(path: object, *wanted: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")  # type: ignore[attr-defined]
        if all(line in text for line in wanted):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{wanted} not in the node's log:\n{text[-3000:]}")


async def test_access_log_lines_hold_no_secret(cluster3: LoopbackCluster) -> None:
    node = cluster3.nodes[0]
    token, cookie = os.urandom(8).hex(), os.urandom(8).hex()
    own_cert = ssl.create_default_context(cafile=str(node.data_dir / "tls" / "cert.pem"))
    async with httpx.AsyncClient(verify=own_cert, timeout=30) as http:
        answer = await http.get(f"{cluster3.url(0)}/v1/cluster", params={"access_token": token},
                                auth=(cluster3.username, cluster3.password),
                                headers={"Cookie": f"sid={cookie}"})
        assert answer.status_code == 200
        login = await http.post(f"https://{node.addr}:{CONSOLE_PORT}/login",
                                json={"username": cluster3.username, "password": cluster3.password})
        assert login.status_code == 200, login.text
        session = login.cookies
    text = wait_for_lines(node.log_file, '"GET /v1/cluster" 200', '"POST /login" 200')
    lines = [line for line in text.splitlines() if '"GET /v1/cluster" 200' in line]
    # `<time> INFO recluster.access: api <client> "GET /v1/cluster" 200 <bytes> <ms>ms`
    assert any(" INFO recluster.access: api 127.0.0.1 " in line for line in lines), lines
    basic = base64.b64encode(f"{cluster3.username}:{cluster3.password}".encode()).decode()
    secrets = {"password": cluster3.password, "Basic credentials": basic, "query token": token,
               "cookie": cookie, **{f"session cookie {name}": value for name, value in session.items()}}
    for what, value in secrets.items():
        assert value not in text, f"the {what} is in the node's log"
