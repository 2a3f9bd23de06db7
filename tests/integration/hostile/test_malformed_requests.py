"""Malformed, oversized and slow requests to the REST API (9443), the console (8443) and the service
broker, all real processes on a 3-node loopback cluster, with httpx and raw sockets. Every server
answers 4xx naming the problem (or cuts a slow client off) and keeps running: at the end each answers
normally from the same process it started as.

The limits come from recluster.http_limits (1 MiB bodies, 16 KiB heads, 10 s to send the head, 30 s
to send the body, JSON nesting 32).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from tests.integration.broker.conftest import API_VERSION, BrokerProcess, plan_ids, poll

from recluster.http_limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_BODY_BYTES, MAX_HEADER_BYTES
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

if not shutil.which("redis-server"):  # pragma: no cover - a machine without Redis cannot run these
    pytest.skip("redis-server is not installed", allow_module_level=True)

NODE = 1  # a follower: writes are forwarded to the leader
CONSOLE_PORT = 8443
TEN_MIB = 10 * 1024 * 1024
MB = 1024 * 1024
Ids = tuple[str, dict[str, str]]  # the catalog's service id and plan ids by name


@dataclass
class Servers:
    cluster: LoopbackCluster
    broker: BrokerProcess
    start: dict[str, tuple[int, str]]  # server -> (pid, start time in /proc/<pid>/stat)

    @property
    def api(self) -> str:
        return self.cluster.url(NODE)

    @property
    def console(self) -> str:
        return f"https://{self.cluster.nodes[NODE].addr}:{CONSOLE_PORT}"

    def pid(self, server: str) -> int:
        process = self.broker.process if server == "broker" else self.cluster.nodes[NODE].process
        assert process is not None
        return process.pid

    def api_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.api, verify=False, timeout=60,  # noqa: S501
                                 auth=(self.cluster.username, self.cluster.password), **kwargs)

    def console_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.console, verify=False, timeout=60)  # noqa: S501

    def broker_client(self) -> httpx.AsyncClient:
        return self.broker.client()


def started(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    root = tmp_path_factory.mktemp("hostile")
    cluster = LoopbackCluster(3, root / "cluster", replica_move_grace_s=600.0, down_after_ms=5000)
    broker = BrokerProcess(cluster, root / "broker", api_url=cluster.url(NODE))
    try:
        await cluster.start(timeout_s=180)
        await cluster.wait_ready(timeout_s=120)
        await asyncio.to_thread(broker.start)
        node_pid = cluster.nodes[NODE].process.pid  # type: ignore[union-attr]
        broker_pid = broker.process.pid  # type: ignore[union-attr]
        yield Servers(cluster, broker, {"node": (node_pid, started(node_pid)),
                                        "broker": (broker_pid, started(broker_pid))})
    finally:
        broker.stop()
        cluster.stop()
        assert not broker.alive(), "broker left running"
        assert cluster.leftover_pids() == [], "processes left behind after teardown"
        for secret in (cluster.password, broker.password):
            assert secret not in broker.log(), "the broker logged a password"
            for node in cluster.nodes:
                assert secret not in node.log_file.read_text(errors="replace"), "a node logged a password"


@pytest.fixture(scope="module")
def catalog_ids(servers: Servers) -> Ids:
    response = httpx.get(f"{servers.broker.url}/v2/catalog", timeout=30, verify=servers.broker.verify,
                         headers={"Authorization": servers.broker.auth_header(),
                                  "X-Broker-API-Version": API_VERSION})
    return plan_ids(response.json())


async def log_in(servers: Servers, client: httpx.AsyncClient) -> dict[str, str]:
    """Logs the console client in; the headers its writes need (CSRF token, own origin)."""
    response = await client.post("/login", json={"username": servers.cluster.username,
                                                 "password": servers.cluster.password})
    assert response.status_code == 200, response.text
    csrf = (await client.get("/api/session")).json()["csrf"]
    return {"X-CSRF-Token": csrf, "Origin": servers.console}


def provision_body(service_id: str, plan_id: str, **extra: Any) -> dict[str, Any]:
    return {"service_id": service_id, "plan_id": plan_id, "organization_guid": "org",
            "space_guid": "space", **extra}


# ---- sizes --------------------------------------------------------------------------------------


def big_json() -> bytes:
    return json.dumps({"name": "x" * TEN_MIB, "memory_size": 1}).encode()


async def chunked(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def test_ten_mib_bodies_get_413_and_memory_stays_bounded(servers: Servers, catalog_ids: Ids) -> None:
    service_id, plans = catalog_ids
    before = {name: rss_bytes(servers.pid(name)) for name in ("node", "broker")}
    body = big_json()
    instance = f"/v2/service_instances/big-{uuid.uuid4()}"
    async with servers.api_client() as api, servers.console_client() as console, \
            servers.broker_client() as broker:
        targets = [(api, "POST", "/v1/bdbs"), (api, "PUT", "/v1/license"), (console, "POST", "/login"),
                   (broker, "PUT", instance)]
        for client, method, path in targets:
            # with Content-Length, then chunked (no length): both refused, four at a time
            for content in (body, None):
                answers = await asyncio.gather(*(
                    client.request(method, path, params={"accepts_incomplete": "true"},
                                   content=content if content is not None else chunked(body),
                                   headers={"Content-Type": "application/json"})
                    for _ in range(4)))
                for answer in answers:
                    assert answer.status_code == 413, (path, answer.status_code, answer.text[:200])
                    problem = answer.json()
                    assert str(MAX_BODY_BYTES) in problem["message"] and problem["description"], problem
        # just under the limit is read and judged on its content
        fits = json.dumps({"name": "x" * (MAX_BODY_BYTES - 100), "memory_size": 1}).encode()
        answer = await api.post("/v1/bdbs", content=fits, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["field"] == "name", answer.text[:300]
        large = provision_body(service_id, plans["small"], context={"x": "y" * 900_000})
        answer = await broker.put(instance, params={"accepts_incomplete": "true"}, json=large)
        assert answer.status_code == 202, answer.text[:300]  # accepted: a real (small) provision
        result = await poll(broker, instance.rsplit("/", 1)[1], answer.json()["operation"])
        assert result["state"] == "succeeded", result
        answer = await broker.delete(instance, params={"service_id": service_id, "plan_id": plans["small"],
                                                       "accepts_incomplete": "true"})
        assert answer.status_code == 202, answer.text
        await poll(broker, instance.rsplit("/", 1)[1], answer.json()["operation"], gone_ok=True)
    for name, rss in before.items():
        grown = rss_bytes(servers.pid(name)) - rss
        print(f"{name}: RSS {rss / MB:.0f} MiB -> grew {grown / MB:.1f} MiB after 40 bodies of 10 MiB")
        assert grown < 32 * MB, f"{name} grew by {grown / MB:.0f} MiB"


async def test_a_body_announced_with_expect_100_continue_is_refused_at_once(servers: Servers) -> None:
    for host, port, secure, path in ((servers.cluster.nodes[NODE].addr, servers.cluster.api_port, True,
                                      "/v1/bdbs"),
                                     (servers.broker.host, servers.broker.port, True, "/v2/catalog")):
        reader, writer = await open_raw(host, port, secure)
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {TEN_MIB}\r\nExpect: 100-continue\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 413"), head
        writer.close()


async def test_huge_headers_get_431(servers: Servers) -> None:
    # no client-side auth on the API client: httpx would replace the oversized Authorization header
    bare_api = httpx.AsyncClient(base_url=servers.api, verify=False)  # noqa: S501
    async with bare_api as api, servers.console_client() as console, servers.broker_client() as broker:
        for client, path in ((api, "/v1/cluster"), (console, "/login"), (broker, "/v2/catalog")):
            for headers in ({"X-Big": "a" * (64 * 1024)},
                            {f"X-Many-{i}": "b" * 40 for i in range(1000)},
                            {"Authorization": "Basic " + "A" * (MAX_HEADER_BYTES + 10)}):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 431, (path, answer.status_code, answer.text[:200])
                assert str(MAX_HEADER_BYTES) in answer.text
        answer = await api.get("/v1/cluster", headers={"Authorization": "Basic " + "A" * 8000})
        assert answer.status_code == 401 and answer.json()["error_code"] == "unauthorized"
        answer = await broker.get("/v2/catalog", headers={"Authorization": "Basic " + "A" * 8000})
        assert answer.status_code == 401


# ---- malformed bodies ---------------------------------------------------------------------------


async def test_malformed_json_gets_400_naming_the_problem(servers: Servers, catalog_ids: Ids) -> None:
    service_id, plans = catalog_ids
    url = f"/v2/service_instances/bad-{uuid.uuid4()}"
    async with servers.api_client() as api, servers.broker_client() as broker, \
            servers.console_client() as console:
        csrf = await log_in(servers, console)
        json_type = {"Content-Type": "application/json"}
        for content in (b'{"name": "x", "memory_size": ', b"{not json}", b'{"a": 1,}', b"\xff\xfe{}",
                        b"1" * 5000):
            answer = await api.post("/v1/bdbs", content=content, headers=json_type)
            assert answer.status_code == 400, (content, answer.text)
            assert answer.json()["error_code"] in ("invalid_json", "http_error"), answer.text
            assert "JSON" in answer.json()["message"] or "body" in answer.json()["message"], answer.text

            answer = await broker.put(url, params={"accepts_incomplete": "true"}, content=content,
                                      headers=json_type)
            assert answer.status_code == 400 and "not valid JSON" in answer.json()["description"], answer.text

            answer = await console.post("/login", content=content, headers=json_type)
            assert answer.status_code == 400 and "not valid JSON" in answer.json()["message"], answer.text
            answer = await console.post("/api/bdbs", content=content, headers={**json_type, **csrf})
            assert answer.status_code == 400 and "not valid JSON" in answer.json()["message"], answer.text

        # JSON, but not an object, or with wrong types: the field is named
        answer = await api.post("/v1/bdbs", json=[1, 2])
        assert answer.status_code == 400 and answer.json()["error_code"] == "invalid_schema", answer.text
        answer = await api.post("/v1/bdbs", json={"name": ["x"], "memory_size": 1})
        assert answer.status_code == 400 and answer.json()["field"] == "name", answer.text
        answer = await broker.put(url, params={"accepts_incomplete": "true"}, json=["x"])
        assert answer.status_code == 400 and "JSON object" in answer.json()["description"], answer.text
        answer = await broker.put(url, params={"accepts_incomplete": "true"},
                                  json=provision_body(service_id, plans["small"], context="not an object"))
        assert answer.status_code == 400 and "context" in answer.json()["description"], answer.text


async def test_wrong_content_types(servers: Servers) -> None:
    body = json.dumps({"name": "typed", "memory_size": 1048576})
    async with servers.api_client() as api, servers.broker_client() as broker, \
            servers.console_client() as console:
        csrf = await log_in(servers, console)
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                             "application/xml", "image/png"):
            headers = {"Content-Type": content_type}
            # the REST API reads JSON only from a JSON content type: anything else is not the body it needs
            answer = await api.post("/v1/bdbs", content=body, headers=headers)
            assert answer.status_code == 400, (content_type, answer.text)
            assert answer.json()["field"] == "body", answer.text
            answer = await api.post("/v1/bdbs", content=b"name=typed&memory_size=1", headers=headers)
            assert answer.status_code == 400, (content_type, answer.text)
            # the broker and the console read the body as JSON whatever its label; a form is not JSON
            answer = await broker.put("/v2/service_instances/typed", params={"accepts_incomplete": "true"},
                                      content=b"service_id=x&plan_id=y", headers=headers)
            assert answer.status_code == 400, (content_type, answer.text)
            answer = await console.post("/api/bdbs", content=b"<bdb name='typed'/>",
                                        headers={**headers, **csrf})
            assert answer.status_code == 400, (content_type, answer.text)
        assert "typed" not in [b["name"] for b in (await api.get("/v1/bdbs")).json()]


async def test_deeply_nested_json(servers: Servers, catalog_ids: Ids) -> None:
    service_id, plans = catalog_ids
    json_type = {"Content-Type": "application/json"}

    def nested(depth: int) -> Any:
        value: Any = {}
        for _ in range(depth):
            value = {"a": value}
        return value

    brackets = b"[" * 400_000 + b"]" * 400_000  # 800 KB, within the body limit
    url = f"/v2/service_instances/deep-{uuid.uuid4()}"
    async with servers.api_client() as api, servers.broker_client() as broker, \
            servers.console_client() as console:
        csrf = await log_in(servers, console)
        answer = await api.post("/v1/bdbs", content=brackets, headers=json_type)
        assert answer.status_code == 400, answer.text[:300]
        answer = await api.post("/v1/bdbs", json={"name": "deep", "memory_size": 1,
                                                  "snapshot_policy": nested(500)})
        assert answer.status_code == 400 and answer.json()["field"].startswith("snapshot_policy"), answer.text
        # bootstrap's `node` takes extra keys: still refused (the node is a member), not a crash
        answer = await api.post("/v1/bootstrap/join_cluster",
                                json={"cluster": {"nodes": ["x"]}, "node": {"identity": nested(500)}})
        assert answer.status_code in (400, 409), answer.text[:300]

        for body in (brackets, json.dumps(provision_body(service_id, plans["small"],
                                                         parameters=nested(200))).encode(),
                     json.dumps(provision_body(service_id, plans["small"], context=nested(600))).encode()):
            answer = await broker.put(url, params={"accepts_incomplete": "true"}, content=body,
                                      headers=json_type)
            assert answer.status_code == 400, answer.text[:300]
            assert "nested deeper" in answer.json()["description"], answer.text[:300]
        # JSON in a header: X-Broker-API-Originating-Identity is base64 of a JSON object
        identity = "kubernetes " + base64.b64encode(b"[" * 3000 + b"]" * 3000).decode()
        answer = await broker.get("/v2/catalog", headers={"X-Broker-API-Originating-Identity": identity})
        assert answer.status_code in (200, 400), answer.text[:300]
        answer = await broker.put(url, params={"accepts_incomplete": "true"},
                                  json=provision_body(service_id, "no-such-plan"),
                                  headers={"X-Broker-API-Originating-Identity": identity})
        assert answer.status_code == 400, answer.text[:300]

        for path, headers in (("/login", json_type), ("/api/bdbs", {**json_type, **csrf})):
            answer = await console.post(path, content=brackets, headers=headers)
            assert answer.status_code == 400, answer.text[:300]
            assert "nested deeper" in answer.json()["message"], answer.text[:300]


# ---- names and numbers --------------------------------------------------------------------------

BAD_NAMES = ["abc\n", "a\nb", "a\rb", "a\x00b", "a b", "données", "\u202eevil", "a\u200bb", "ccs", "",
             "x" * 64, "a/b", "a\"b", "😀", "\ud800", "a\tb"]


async def test_unicode_and_control_characters_in_names_are_refused(servers: Servers) -> None:
    async with servers.api_client() as api, servers.console_client() as console:
        csrf = await log_in(servers, console)
        for name in BAD_NAMES:
            # json.dumps escapes everything, so control characters and lone surrogates reach the server
            answer = await api.post("/v1/bdbs", content=json.dumps({"name": name, "memory_size": MB}),
                                    headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["field"] == "name" and "'name'" in answer.json()["message"], answer.text
            if name.strip() != name:
                continue  # the console's form trims the name (so "abc\n" is "abc" there)
            answer = await console.post("/api/bdbs", content=json.dumps({"name": name, "memory_mb": "1"}),
                                        headers={"Content-Type": "application/json", **csrf})
            assert answer.status_code == 400, (name, answer.text)
            # the field named; a lone surrogate makes the whole body unreadable, which the message says
            assert "name" in answer.json()["fields"] or "surrogate" in answer.json()["message"], answer.text
        # an unpaired surrogate in free text (valid JSON, but no UTF-8 for it): refused, field named
        json_type = {"Content-Type": "application/json"}
        body = {"name": "s", "memory_size": MB, "authentication_redis_pass": "\ud800"}
        answer = await api.post("/v1/bdbs", content=json.dumps(body), headers=json_type)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "authentication_redis_pass", answer.text
        assert "\\ud800" not in answer.text, "a password is never echoed"
        answer = await api.put("/v1/license", content=json.dumps({"license": "x\udfff"}), headers=json_type)
        assert answer.status_code == 400 and answer.json()["field"] == "license", answer.text
        form = json.dumps({"name": "ok", "authentication_redis_pass": "\ud800"})
        answer = await console.post("/api/bdbs", content=form, headers={**json_type, **csrf})
        assert answer.status_code == 400 and "surrogate" in answer.json()["message"], answer.text
        assert (await api.get("/v1/bdbs")).json() == []
        # in URLs: percent-encoded control characters and unicode in ids are just unknown objects
        for path in ("/v1/bdbs/%0A", "/v1/bdbs/1%00", "/v1/actions/%E2%80%AE%0D%0Ax",
                     "/v1/nodes/%F0%9F%98%80", "/v1/bdbs/%ff"):
            answer = await api.get(path)
            assert answer.status_code in (400, 404), (path, answer.text)
        # ... also in a write this follower forwards to the leader (the path is passed on encoded)
        for path in ("/v1/shards/%0C%C2%BE/actions/failover", "/v1/nodes/%0A/actions/remove"):
            answer = await api.post(path)
            assert answer.status_code in (400, 404), (path, answer.text)


async def test_unicode_and_control_characters_in_broker_ids(servers: Servers, catalog_ids: Ids) -> None:
    """An instance id with control and bidi characters provisions a database whose name stays in the
    cluster's charset; binding and deprovisioning work; ids are echoed only inside JSON."""
    service_id, plans = catalog_ids
    instance = "\u202eévil\nforged log line\x01" + uuid.uuid4().hex[:6]
    quoted = quote(instance, safe="")
    url = f"/v2/service_instances/{quoted}"
    incomplete = {"accepts_incomplete": "true"}
    async with servers.broker_client() as broker:
        answer = await broker.put(url, params=incomplete, json=provision_body(service_id, plans["small"]))
        assert answer.status_code == 202, answer.text
        result = await poll(broker, quoted, answer.json()["operation"])
        assert result["state"] == "succeeded", result
        answer = await broker.put(f"{url}/service_bindings/b%0A1", json={"service_id": service_id,
                                                                         "plan_id": plans["small"]})
        assert answer.status_code == 201, answer.text
        name = answer.json()["credentials"]["name"]
        assert name.isascii() and "\n" not in name and name.startswith("osb-"), name
        answer = await broker.delete(url, params={**incomplete, "service_id": service_id,
                                                  "plan_id": plans["small"]})
        assert answer.status_code == 202, answer.text
        await poll(broker, quoted, answer.json()["operation"], gone_ok=True)
    forged = [line for line in servers.broker.log().splitlines() if line.startswith("forged log line")]
    assert not forged, f"an instance id wrote its own line into the broker's log: {forged}"


async def test_a_password_with_quotes_and_newlines_works(servers: Servers) -> None:
    """The database password is free text; quotes, backslashes and newlines must not break (or
    inject lines into) the shard's redis.conf."""
    password = 'p"a\\ss\nrename-command FLUSHALL ""\n\x01ünï'
    async with servers.api_client() as api:
        answer = await api.post("/v1/bdbs", json={"name": "quoted-pass", "memory_size": 16 * MB,
                                                  "replication": True, "authentication_redis_pass": password})
        assert answer.status_code == 200, answer.text
        uid = answer.json()["uid"]
        try:
            for _ in range(60):
                bdb = (await api.get(f"/v1/bdbs/{uid}")).json()
                if bdb["status"] in ("active", "creation-failed"):
                    break
                await asyncio.sleep(1)
            assert bdb["status"] == "active", bdb["status"]
            client = aioredis.Redis(host=bdb["endpoints"][0]["addr"][0], port=bdb["port"], password=password,
                                    socket_timeout=5)
            try:
                assert await client.set("k", "v") and await client.get("k") == b"v"
                assert await client.execute_command("FLUSHALL"), "a password line must not rename commands"
            finally:
                await client.aclose()
        finally:
            assert (await api.delete(f"/v1/bdbs/{uid}")).status_code == 200
            for _ in range(60):
                if (await api.get(f"/v1/bdbs/{uid}")).status_code == 404:
                    break
                await asyncio.sleep(1)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"memory_size": 10**30}, 400, "memory_size"),
    ({"memory_size": -1}, 400, "memory_size"),
    ({"memory_size": 2**63}, 400, "memory_size"),
    ({"memory_size": 1.5}, 400, "memory_size"),
    ({"memory_size": True}, 400, "memory_size"),
    ({"port": -1}, 400, "port"),
    ({"port": 10**30}, 400, "port"),
    ({"port": 0}, 400, "port"),
    ({"uid": 10**30}, 400, "uid"),
    ({"uid": -5}, 400, "uid"),
    ({"shards_count": 10**30}, 406, "shards_count"),
    ({"shards_count": 0}, 400, "shards_count"),
    ({"data_persistence": "snapshot", "snapshot_policy": [{"secs": 60, "writes": 2**32 + 1}]}, 400,
     "snapshot_policy.0.writes"),
    ({"data_persistence": "snapshot", "snapshot_policy": [{"secs": -60, "writes": 1}]}, 400,
     "snapshot_policy.0.secs"),
])
async def test_negative_and_huge_numbers_get_4xx_naming_the_field(servers: Servers, body: dict[str, Any],
                                                                  status: int, field: str) -> None:
    request = {"name": "numbers", "memory_size": MB, **body}
    async with servers.api_client() as api:
        answer = await api.post("/v1/bdbs", json=request)
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] == field and f"'{field}'" in answer.json()["message"], answer.text
        assert (await api.get("/v1/bdbs")).json() == []


async def test_non_finite_and_huge_numbers_in_json_text(servers: Servers) -> None:
    json_type = {"Content-Type": "application/json"}
    async with servers.api_client() as api:
        for number in ("1e400", "-1e400", "NaN", "Infinity", "1" + "0" * 4000):
            answer = await api.post("/v1/bdbs", content=f'{{"name": "n", "memory_size": {number}}}',
                                    headers=json_type)
            assert answer.status_code == 400, (number, answer.text)
            assert answer.json()["field"] == "memory_size", (number, answer.text)


async def test_console_numbers(servers: Servers) -> None:
    async with servers.console_client() as console:
        headers = {"Content-Type": "application/json", **await log_in(servers, console)}
        for form, field in (({"memory_mb": "1e400"}, "memory_mb"), ({"memory_mb": "inf"}, "memory_mb"),
                            ({"memory_mb": "nan"}, "memory_mb"), ({"memory_mb": "1e30"}, "memory_mb"),
                            ({"memory_mb": "-1"}, "memory_mb"), ({"port": "-1"}, "port"),
                            ({"port": "99999999999999999999999"}, "port"), ({"port": "1e3"}, "port")):
            answer = await console.post("/api/bdbs", content=json.dumps({"name": "form-numbers", **form}),
                                        headers=headers)
            assert answer.status_code == 400, (form, answer.text)
            assert field in answer.json()["fields"], (form, answer.text)
        for uid in ("-1", "99999999999999999999999", "abc"):
            answer = await console.put(f"/api/bdbs/{uid}", json={"memory_mb": "1"}, headers=headers)
            assert 400 <= answer.status_code < 500, (uid, answer.text)


async def test_broker_numbers_and_flags(servers: Servers, catalog_ids: Ids) -> None:
    service_id, plans = catalog_ids
    url = f"/v2/service_instances/num-{uuid.uuid4()}"
    async with servers.broker_client() as broker:
        for parameters in ({"eviction_policy": 10**30}, {"eviction_policy": -1}, {"persistence": 1e308},
                           {"eviction_policy": None}):
            answer = await broker.put(url, params={"accepts_incomplete": "true"},
                                      json=provision_body(service_id, plans["small"], parameters=parameters))
            assert answer.status_code == 400, (parameters, answer.text)
            assert str(10**30) not in answer.text
        for version in ("2." + "9" * 5000, "-2.17", "2.-1", "99999999999999999999.1"):
            answer = await broker.get("/v2/catalog", headers={"X-Broker-API-Version": version})
            assert answer.status_code in (400, 412), (version, answer.text)
        answer = await broker.put(url, params={"accepts_incomplete": "9" * 100},
                                  json=provision_body(service_id, plans["small"]))
        assert answer.status_code == 422 and answer.json()["error"] == "AsyncRequired", answer.text


# ---- slow clients -------------------------------------------------------------------------------


async def open_raw(host: str, port: int, secure: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = None
    if secure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return await asyncio.open_connection(host, port, ssl=context, server_hostname=host if secure else None)


async def cut_off_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        trickle: bytes | None, limit_s: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, while the client sends `trickle` a byte a
    second (None: it sends nothing more); and what the server said."""
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def dribble() -> None:
        for byte in (trickle or b""):
            await asyncio.sleep(1)
            writer.write(bytes([byte]))
            await writer.drain()

    task = asyncio.create_task(dribble())
    said = b""
    try:
        async with asyncio.timeout(limit_s):
            while chunk := await reader.read(4096):
                said += chunk
    except (ConnectionError, ssl.SSLError):
        pass  # a reset is a cut-off too
    finally:
        task.cancel()
        writer.close()
    return loop.time() - start, said


async def test_slow_clients_are_cut_off(servers: Servers) -> None:
    node = servers.cluster.nodes[NODE].addr
    endpoints = {"api": (node, servers.cluster.api_port, True, "/v1/ready"),
                 "console": (node, CONSOLE_PORT, True, "/login"),
                 "broker": (servers.broker.host, servers.broker.port, True, "/healthz")}
    trickle = b"X-Slow: " + b"a" * 60  # a header byte a second, never the end of the headers

    async def slow_headers(name: str) -> tuple[str, str, float, bytes]:
        host, port, secure, path = endpoints[name]
        reader, writer = await open_raw(host, port, secure)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode())
        took, said = await cut_off_after(reader, writer, trickle, HEADER_TIMEOUT_S + 20)
        return name, "headers", took, said

    async def silent(name: str) -> tuple[str, str, float, bytes]:
        host, port, secure, _ = endpoints[name]
        reader, writer = await open_raw(host, port, secure)
        took, said = await cut_off_after(reader, writer, None, HEADER_TIMEOUT_S + 20)
        return name, "silent", took, said

    async def slow_body(name: str) -> tuple[str, str, float, bytes]:
        host, port, secure, _ = endpoints[name]
        reader, writer = await open_raw(host, port, secure)
        path = "/v1/bdbs" if name == "api" else "/login"
        credentials = f"{servers.cluster.username}:{servers.cluster.password}".encode()
        auth = "Basic " + base64.b64encode(credentials).decode()
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
        took, said = await cut_off_after(reader, writer, b'"name": "slow"' * 5, BODY_TIMEOUT_S + 20)
        return name, "body", took, said

    results = await asyncio.gather(*(kind(name) for name in endpoints for kind in (slow_headers, silent)),
                                   slow_body("api"))
    for name, kind, took, said in results:
        print(f"{name}: slow {kind}: cut off after {took:.1f} s ({said[:12]!r})")
        bound = BODY_TIMEOUT_S if kind == "body" else HEADER_TIMEOUT_S
        assert bound - 1.5 <= took <= bound + 10, (name, kind, took)  # + slack for a loaded machine
        if kind == "body":
            assert said.startswith(b"HTTP/1.1 408"), said
    # a prompt client on each is served at once, meanwhile and after
    async with servers.api_client() as api, servers.console_client() as console, \
            servers.broker_client() as broker:
        assert (await api.get("/v1/ready")).status_code == 200
        assert (await console.get("/login")).status_code == 200
        assert (await broker.get("/v2/catalog")).status_code == 200


async def test_many_idle_connections_do_not_block_others(servers: Servers) -> None:
    """50 connections that send nothing (held by the header timeout at most) while a normal client
    keeps working."""
    node = servers.cluster.nodes[NODE].addr
    broker = servers.broker
    idle = await asyncio.gather(*(open_raw(node, servers.cluster.api_port, True) for _ in range(25)),
                                *(open_raw(broker.host, broker.port, True) for _ in range(25)))
    try:
        start = time.monotonic()
        async with servers.api_client() as api, servers.broker_client() as broker:
            for _ in range(5):
                assert (await api.get("/v1/cluster")).status_code == 200
                assert (await broker.get("/v2/catalog")).status_code == 200
        assert time.monotonic() - start < 10
    finally:
        for _, writer in idle:
            writer.close()


# ---- afterwards ---------------------------------------------------------------------------------


async def test_every_server_still_answers_from_the_same_process(servers: Servers) -> None:
    for name, (pid, start_time) in servers.start.items():
        assert servers.pid(name) == pid
        assert started(pid) == start_time, f"{name}: another process has pid {pid}"
    for node in servers.cluster.nodes:
        assert node.process is not None and node.process.poll() is None, f"node {node.index} exited"
    async with servers.api_client() as api, servers.console_client() as console, \
            servers.broker_client() as broker:
        cluster = (await api.get("/v1/cluster")).json()
        assert cluster["nodes_count"] == 3
        nodes = (await api.get("/v1/nodes")).json()
        assert [n["status"] for n in nodes] == ["active"] * 3
        assert (await api.get("/v1/bdbs")).json() == []
        assert (await console.get("/login")).status_code == 200
        login = await console.post("/login", json={"username": servers.cluster.username,
                                                   "password": servers.cluster.password})
        assert login.status_code == 200
        assert (await console.get("/api/snapshot")).status_code == 200
        assert (await broker.get("/v2/catalog")).status_code == 200
    await servers.cluster.wait_ready(timeout_s=60)
    for name in ("node", "broker"):
        print(f"{name}: RSS at the end {rss_bytes(servers.pid(name)) / MB:.0f} MiB")
