"""The console through the REC's `rec-ui` Service, as a browser reaches it: one login, then 20
requests each on a new connection, which the Service spreads over the node pods (no session
affinity); every one is served as logged in, and the pods' access logs show more than one pod
served them."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.e2e.redb.conftest import RedbEnv

from recluster.api.naming import NODE_CONTAINER
from recluster.console.sessions import COOKIE
from recluster.local.harness import NODE_SELECTOR, kubectl, secret_data, service

pytestmark = pytest.mark.e2e

UI_PORT = 8443


def session_lines(env: RedbEnv) -> dict[str, int]:
    """Per node pod: how many console access-log lines name /api/session."""
    pods = json.loads(kubectl(env.cluster, "-n", env.namespace, "get", "pods", "-l", NODE_SELECTOR,
                              "-o", "json").stdout)["items"]
    counts = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        logs = kubectl(env.cluster, "-n", env.namespace, "logs", name, "-c", NODE_CONTAINER,
                       check=False).stdout
        counts[name] = sum(1 for line in logs.splitlines() if "console" in line and "/api/session" in line)
    return counts


def test_a_console_session_holds_across_pods_behind_the_ui_service(redb_env: RedbEnv) -> None:
    ui = service(redb_env.cluster, redb_env.namespace, "rec-ui")
    assert ui is not None and ui["spec"].get("sessionAffinity", "None") != "ClientIP"
    base = f"https://{ui['spec']['clusterIP']}:{UI_PORT}"
    creds = secret_data(redb_env.cluster, redb_env.namespace, "rec") or {}
    before = session_lines(redb_env)
    # a new connection per request: the Service (kube-proxy) picks a pod for each
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(verify=False, timeout=30, limits=no_reuse) as http:  # noqa: S501 (the REC's own CA)
        login = http.post(base + "/login", headers={"origin": base},
                          json={"username": creds["username"], "password": creds["password"]})
        assert login.status_code == 200, login.text
        token = login.cookies[COOKIE]
        cookie = {"cookie": f"{COOKIE}={token}"}
        answers = [http.get(base + "/api/session", headers=cookie) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert all(a.json()["username"] == creds["username"] for a in answers)
    served = {pod: count - before.get(pod, 0) for pod, count in session_lines(redb_env).items()}
    print(f"/api/session served per pod: {served}")
    assert sum(served.values()) >= 20 and sum(1 for n in served.values() if n > 0) >= 2, served
