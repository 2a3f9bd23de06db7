"""The Kubernetes adapter on its own HTTP session (no kubernetes_asyncio): requests, refusals with the
apiserver's message, 404 as None, the bearer token; and the credentials it reads from a kubeconfig."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from recluster.clients.kubeconfig import KubeConfig, KubeConfigError
from recluster.clients.kubernetes import APPLY, Kube, KubeError

pytestmark = pytest.mark.unit


@pytest.fixture
async def apiserver(unused_tcp_port: int) -> AsyncIterator[tuple[Kube, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append({"method": request.method, "path": request.path, "query": dict(request.query),
                     "headers": dict(request.headers), "body": json.loads(body) if body else None})
        if request.path.endswith("/missing"):
            return web.json_response({"kind": "Status", "message": "not found"}, status=404)
        if request.path.endswith("/refused"):
            return web.json_response({"kind": "Status", "message": "spec.nodes: Invalid value"}, status=422)
        if request.method == "DELETE":
            return web.Response(status=200)
        return web.json_response({"metadata": {"name": request.path.rsplit("/", 1)[-1]}, "items": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    kube = Kube(KubeConfig(f"http://127.0.0.1:{unused_tcp_port}", token="t0ken"), "tests")
    try:
        yield kube, seen
    finally:
        await kube.close()
        await runner.cleanup()


async def test_requests_carry_the_token_the_query_and_the_body(
    apiserver: tuple[Kube, list[dict[str, Any]]],
) -> None:
    kube, seen = apiserver
    assert await kube.get("v1", "Secret", "ns", "rec") == {"metadata": {"name": "rec"}, "items": []}
    assert await kube.list("v1", "Pod", "ns", "app=redis-enterprise") == []
    meta = {"name": "rec", "namespace": "ns"}
    statefulset = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta}
    await kube.apply(statefulset)
    get, listing, apply = seen
    assert get["path"] == "/api/v1/namespaces/ns/secrets/rec"
    assert get["headers"]["Authorization"] == "Bearer t0ken"
    assert listing["query"] == {"labelSelector": "app=redis-enterprise"}
    assert apply["method"] == "PATCH" and apply["headers"]["Content-Type"] == APPLY
    assert apply["query"] == {"fieldManager": "tests", "force": "true"} and apply["body"] == statefulset
    assert await kube.delete("v1", "Pod", "ns", "rec-0", grace_period_seconds=0)
    assert seen[-1]["body"] == {"gracePeriodSeconds": 0}


async def test_refusals_name_the_apiservers_message_and_404_is_none(
    apiserver: tuple[Kube, list[dict[str, Any]]],
) -> None:
    kube, _ = apiserver
    assert await kube.get("v1", "Secret", "ns", "missing") is None
    with pytest.raises(KubeError) as refused:
        await kube.merge_patch("v1", "Secret", "ns", "refused", {"data": {}})
    assert refused.value.status == 422 and "spec.nodes: Invalid value" in str(refused.value)


def test_kubeconfig_files_relative_to_it_inline_data_and_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    config = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://198.18.0.1:6443/",
                                                "certificate-authority": "pki/ca.crt"}}],
        "users": [{"name": "u", "user": {"client-certificate": "/abs/client.crt",
                                          "client-key-data": base64.b64encode(b"KEY").decode(),
                                          "tokenFile": "token"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    loaded = KubeConfig.from_file(path)
    assert loaded.server == "https://198.18.0.1:6443"
    assert loaded.ca_file == str(tmp_path / "pki/ca.crt") and loaded.cert_file == "/abs/client.crt"
    assert loaded.key_file is not None and Path(loaded.key_file).read_bytes() == b"KEY"
    assert Path(loaded.key_file).stat().st_mode & 0o077 == 0
    assert loaded.bearer() == "from-file" and "from-file" not in repr(loaded)
    with pytest.raises(KubeConfigError):
        KubeConfig.from_file(tmp_path / "absent")


def _config(path: Path, current: str, contexts: dict[str, dict[str, str]], clusters: dict[str, str]) -> Path:
    path.write_text(json.dumps({
        "current-context": current,
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in clusters.items()],
        "users": [{"name": "u", "user": {"token": f"token-of-{path.name}"}}],
    }))
    return path


def test_for_user_reads_as_kubectl_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--kubeconfig, else KUBECONFIG's files merged (the first to name a thing wins), the context's
    namespace, and --context instead of the current one."""
    first = _config(tmp_path / "first", "a", {"a": {"cluster": "one", "user": "u", "namespace": "team"}},
                    {"one": "https://one:6443"})
    second = _config(tmp_path / "second", "b",
                     {"b": {"cluster": "two", "user": "u"}, "a": {"cluster": "two"}},
                     {"two": "https://two:6443", "one": "https://not-this:6443"})
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{first}:{second}")
    merged = KubeConfig.for_user()
    assert (merged.server, merged.namespace) == ("https://one:6443", "team")
    assert merged.bearer() == "token-of-first"
    other = KubeConfig.for_user(context="b")
    assert (other.server, other.namespace) == ("https://two:6443", None)
    assert KubeConfig.for_user(str(second)).server == "https://two:6443"
    with pytest.raises(KubeConfigError, match=r"--context c: no such context .*\(known: a, b\)"):
        KubeConfig.for_user(context="c")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubeConfigError, match="KUBECONFIG names no readable file"):
        KubeConfig.for_user()


async def test_text_and_streamed_lines(unused_tcp_port: int) -> None:
    async def log(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/missing/log"):
            return web.json_response({"kind": "Status", "message": "pods \"missing\" not found"}, status=404)
        response = web.StreamResponse()
        await response.prepare(request)
        for line in ("[ccs] one", "two", "[sentinel] three"):
            await response.write(f"{line}\n".encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", log)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    kube = Kube(KubeConfig(f"http://127.0.0.1:{unused_tcp_port}"), "tests")
    try:
        path = "/api/v1/namespaces/ns/pods/rec-0/log"
        assert await kube.text(path, [("container", "node")]) == "[ccs] one\ntwo\n[sentinel] three\n"
        assert [line async for line in kube.lines(path, [("follow", "true")])] == ["[ccs] one", "two",
                                                                                  "[sentinel] three"]
        with pytest.raises(KubeError, match='pods "missing" not found'):
            await kube.text("/api/v1/namespaces/ns/pods/missing/log")
        with pytest.raises(KubeError, match="HTTP 404"):
            async for _ in kube.lines("/api/v1/namespaces/ns/pods/missing/log"):
                pass
    finally:
        await kube.close()
        await runner.cleanup()
