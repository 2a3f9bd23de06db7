"""`report` against a fake apiserver: the bundle holds the REC's objects, events, every container's
log (the previous one after a restart), the operator's logs, the Secrets by name and keys, and says
what it could not collect (here: the REST API); no value of any Secret is in any file, in any form,
though the logs, an environment variable and an annotation held them."""

from __future__ import annotations

import base64
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from recluster.admin.redact import secret_forms
from recluster.admin.report import report
from recluster.admin.session import DIRECT, Options, Session
from recluster.clients.kubeconfig import KubeConfig
from recluster.clients.kubernetes import Kube

pytestmark = pytest.mark.unit

PASSWORD, DB_PASSWORD = "cluster-Pa55word-xyz", "db-pa55-Word-abc"
KEY = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n"
NODE = {"app": "redis-enterprise", "redis.io/cluster": "rec", "redis.io/role": "node"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "type": "Opaque",
            "data": {k: b64(v) for k, v in data.items()}}


SECRETS = [secret("rec", {"username": "admin@example.com", "password": PASSWORD}),
           secret("rec-tls", {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBfake\n", "tls.key": KEY}),
           secret("redb-cache", {"password": DB_PASSWORD, "port": "12000"})]


def pod(name: str, labels: dict[str, str], container: str, restarts: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels,
                         "annotations": {"note": f"set with {PASSWORD}"}, "managedFields": [{"x": 1}]},
            "spec": {"containers": [{"name": container, "env": [
                {"name": "CLUSTER_PASSWORD", "value": "short"},
                {"name": "DB_PASSWORD",
                 "valueFrom": {"secretKeyRef": {"name": "redb-cache", "key": "password"}}}]}]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": container, "restartCount": restarts}]}}


PODS = [pod("rec-0", NODE, "redis-enterprise-node", 1),
        pod("rec-services-rigger-1", {"redis.io/cluster": "rec", "redis.io/role": "services-rigger"},
            "services-rigger", 0),
        pod("redis-enterprise-operator-1", {"name": "redis-enterprise-operator"},
            "redis-enterprise-operator", 0)]


def selected(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in (selector or "").split(","):
        if not term:
            continue
        key, _, value = term.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


@pytest.fixture
async def session(unused_tcp_port: int) -> AsyncIterator[Session]:
    rec = {"apiVersion": "app.redislabs.com/v1", "kind": "RedisEnterpriseCluster",
           "metadata": {"name": "rec", "namespace": "ns", "annotations": {
               "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"password": PASSWORD})}},
           "spec": {"nodes": 3}, "status": {"state": "Running"}}
    objects: dict[str, list[dict[str, Any]]] = {
        "redisenterpriseclusters": [rec], "secrets": SECRETS, "pods": PODS,
        "events": [{"metadata": {"name": "e1"}, "type": "Warning", "reason": "Failover",
                    "involvedObject": {"kind": "Pod", "name": "rec-0"},
                    "lastTimestamp": "2026-12-07T05:00:00Z",
                    "message": f"db password {DB_PASSWORD} rejected"}],
    }

    async def handle(request: web.Request) -> web.Response:
        parts = request.path.strip("/").split("/")
        if parts[-1] == "log":
            previous = request.query.get("previous") == "true"
            text = (f"[shard of bdb 1] started {'(previous run)' if previous else ''}\n"
                    f"AUTH {DB_PASSWORD}\nkey {KEY}\nb64 {b64(PASSWORD)}\n")
            return web.Response(text=text)
        if "namespaces" in parts:
            kind = parts[parts.index("namespaces") + 2]
            at = parts.index("namespaces") + 3
            name = parts[at] if len(parts) > at else None
            items = [o for o in objects.get(kind, []) if selected(o, request.query.get("labelSelector"))]
            if name is None:
                return web.json_response({"items": items})
            found = [o for o in objects.get(kind, []) if o["metadata"]["name"] == name]
            if found:
                return web.json_response(found[0])
        return web.json_response({"kind": "Status", "message": "not found"}, status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    kube = Kube(KubeConfig(f"http://127.0.0.1:{unused_tcp_port}"), "tests")
    session = Session(Options(namespace="ns", via=DIRECT), kube, "ns")
    try:
        yield session
    finally:
        await session.close()
        await runner.cleanup()


async def test_the_bundle_holds_what_support_asks_for_and_no_secret(session: Session, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    path, summary = await report(session, None, out, None, 1 << 20, lambda _: None)
    assert path == out and out.stat().st_mode & 0o077 == 0
    with tarfile.open(out) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                 for m in tar.getmembers() if m.isfile()}
    for name in ("kubernetes/rec.json", "kubernetes/pods.json", "kubernetes/events.txt",
                 "kubernetes/secrets.json",
                 "logs/rec-0/redis-enterprise-node.log", "logs/rec-0/redis-enterprise-node.previous.log",
                 "logs/rec-services-rigger-1/services-rigger.log",
                 "operator/logs/redis-enterprise-operator-1/redis-enterprise-operator.log",
                 "status.txt", "status.json", "summary.json", "README.txt"):
        assert name in files, sorted(files)
    assert "logs/rec-services-rigger-1/services-rigger.previous.log" not in files  # it never restarted
    assert "(previous run)" in files["logs/rec-0/redis-enterprise-node.previous.log"]
    assert [s["keys"] for s in json.loads(files["kubernetes/secrets.json"])] == [
        ["password", "username"], ["ca.crt", "tls.key"], ["password", "port"]]
    pods = json.loads(files["kubernetes/pods.json"])
    env = pods[0]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == "<redacted>"  # a literal value of a secret-named variable, even short
    assert env[1]["valueFrom"] == {"secretKeyRef": {"name": "redb-cache", "key": "password"}}
    assert "managedFields" not in pods[0]["metadata"]
    assert any("REST API" in error for error in summary["errors"])
    assert "Failover" in files["kubernetes/events.txt"]
    values = [base64.b64decode(v).decode() for s in SECRETS for v in s["data"].values()]
    found = [(name, value) for name, text in files.items() for value in values if len(value) >= 6
             for form in secret_forms(value) if form in text]
    assert found == []


async def test_a_directory_bundle_and_refusing_to_overwrite(session: Session, tmp_path: Path) -> None:
    path, _ = await report(session, "rec", tmp_path / "dir", None, 1 << 20, lambda _: None)
    assert (path / "summary.json").is_file() and (path / "logs" / "rec-0").is_dir()
    from recluster.admin.errors import AdminError

    with pytest.raises(AdminError, match="exists and is not empty"):
        await report(session, "rec", tmp_path / "dir", None, 1 << 20, lambda _: None)
