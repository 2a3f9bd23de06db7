"""A real 3-node loopback cluster (the node daemon's dev-cluster launcher) and the broker as a real
`python -m recluster broker` process on the cluster's 127.x network, both stopped by their
recorded pids. The broker serves HTTPS only, with a certificate from a CA made here (as the operator
makes one for it); it can be killed and restarted on the same state directory."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from recluster.certificates import Authority
from recluster.clients.cluster_api import ClusterApi
from recluster.node.devcluster import LoopbackCluster

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
if not Path(REDIS_SERVER).exists():  # pragma: no cover - a machine without Redis cannot run these
    pytest.skip("redis-server is not installed", allow_module_level=True)

BROKER_USER = "platform"
API_VERSION = "2.17"


def write_secret(directory: Path, username: str, password: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in (("username", username), ("password", password)):
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(0o600)
    return directory


def broker_certificate(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A CA and the broker's certificate for `address` signed by it: tls.crt, tls.key, ca.crt (the
    keys of the Secret the operator makes for the broker)."""
    ca = Authority.create("recluster broker test CA", days=2)
    leaf = ca.issue(address, [address], days=1, server=True)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, ca_file = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    cert.write_text(leaf.certificate)
    key.write_text(leaf.key)
    key.chmod(0o600)
    ca_file.write_text(ca.pem().certificate)
    return cert, key, ca_file


class BrokerProcess:
    """`recluster broker` on https://<cluster base>.<host_number>:8080, with its state under `root`;
    its certificate is `tls` (certificate, key, CA), made for its address when not given."""

    def __init__(self, cluster: LoopbackCluster, root: Path, host_number: int = 30,
                 tls: tuple[Path, Path, Path] | None = None, api_url: str | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.cluster = cluster
        self.api_url = api_url or cluster.url(0)
        self.extra_args = extra_args
        self.root = root
        self.host = f"{cluster.base}{host_number}"
        self.port = 8080
        self.tls = tls or broker_certificate(root / "tls", self.host)
        self.password = os.urandom(12).hex()
        self.credentials_dir = write_secret(root / "cluster-secret", cluster.username, cluster.password)
        self.auth_dir = write_secret(root / "broker-secret", BROKER_USER, self.password)
        self.data_dir = root / "data"
        self.log_file = root / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls[2]))

    def auth_header(self) -> str:
        return "Basic " + base64.b64encode(f"{BROKER_USER}:{self.password}".encode()).decode()

    def client(self, **headers: str) -> httpx.AsyncClient:
        base = {"Authorization": self.auth_header(), "X-Broker-API-Version": API_VERSION}
        base.update(headers)
        return httpx.AsyncClient(base_url=self.url, headers=base, timeout=30.0, verify=self.verify)

    def start(self) -> None:
        # settings through the environment the operator's Deployment sets, plus the loopback address
        env = dict(os.environ, RECLUSTER_BROKER_HOST=self.host, RECLUSTER_BROKER_PORT=str(self.port),
                   RECLUSTER_BROKER_API_URL=self.api_url,
                   RECLUSTER_BROKER_CREDENTIALS_FILE=str(self.credentials_dir),
                   RECLUSTER_BROKER_AUTH_DIR=str(self.auth_dir),
                   RECLUSTER_BROKER_DATA_DIR=str(self.data_dir), RECLUSTER_BROKER_CLUSTER="test-rec",
                   POD_NAMESPACE="broker-test", RECLUSTER_BROKER_TLS_CERT=str(self.tls[0]),
                   RECLUSTER_BROKER_TLS_KEY=str(self.tls[1]))
        with open(self.log_file, "ab") as out:
            argv = [sys.executable, "-m", "recluster", "broker", "--poll-interval", "0.3", *self.extra_args]
            self.process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"broker not answering after 60s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything (the restart test)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


@contextlib.contextmanager
def api_paused(cluster: LoopbackCluster) -> Iterator[None]:
    """SIGSTOP the node daemon the broker talks to (by its recorded pid), SIGCONT on exit: the
    broker's worker then waits on its first REST call, so an operation is surely 'in progress'
    however fast the cluster is. Redis and Sentinel keep running, so nothing fails over."""
    process = cluster.nodes[0].process
    assert process is not None and process.poll() is None
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


async def poll(client: httpx.AsyncClient, instance_id: str, operation: str, timeout_s: float = 180.0,
               gone_ok: bool = False) -> dict[str, Any]:
    """last_operation until it leaves 'in progress' (bounded); 410 counts as done when gone_ok."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v2/service_instances/{instance_id}/last_operation",
                                    params={"operation": operation})
        if response.status_code == 410 and gone_ok:
            return {"state": "gone"}
        assert response.status_code == 200, response.text
        last = response.json()
        if last["state"] != "in progress":
            return last
        assert response.headers.get("Retry-After"), "an in-progress answer says when to ask again"
        await asyncio.sleep(0.5)
    raise AssertionError(f"operation {operation} still in progress after {timeout_s:.0f}s: {last}")


async def until(what: str, check: Callable[[], Awaitable[object]], timeout_s: float = 20.0) -> None:
    """Until `check()` is true (a Redis or network error counts as not yet): a binding's user reaches
    the shards, and leaves them, within a node-loop pass or two of the REST call."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            if await check():
                return
            last = "false"
        except (redis.RedisError, OSError) as exc:
            last = exc
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what} (last: {last!r})"
        await asyncio.sleep(0.3)


def redis_client(uri: str) -> aioredis.Redis:
    """A client that does not retry (redis-py reconnects on a closed connection by default: a test
    would see the reconnection's AUTH, not the closed connection)."""
    return aioredis.Redis.from_url(uri, socket_timeout=5, retry=Retry(NoBackoff(), 0))


async def refused(uri: str) -> bool:
    """A new connection with these credentials is refused (WRONGPASS: no such user)."""
    client = redis_client(uri)
    try:
        await client.ping()
    except redis.AuthenticationError:
        return True
    finally:
        await client.aclose()
    return False


async def closed(client: aioredis.Redis) -> bool:
    """The server closed this client's open connection."""
    try:
        await client.ping()
    except redis.ConnectionError:
        return True
    return False


async def binding_grants(api: ClusterApi, username: str) -> dict[str, Any]:
    """What the cluster has for a binding's user: the user, its role and the role's Redis ACL on a
    database ({} when none of them is left)."""
    users = [u for u in await api.objects("users") if u["name"] == username]
    roles = [r for r in await api.objects("roles") if r["name"] == username]
    acls = {a["uid"]: a["name"] for a in await api.objects("redis_acls")}
    found: dict[str, Any] = {}
    if users:
        found.update(user_uid=users[0]["uid"], role_uids=users[0]["role_uids"])
    if roles:
        found.update(role_uid=roles[0]["uid"], management=roles[0]["management"])
        for bdb in await api.bdbs():
            for permission in bdb.get("roles_permissions") or []:
                if permission["role_uid"] == roles[0]["uid"]:
                    found.update(bdb_uid=bdb["uid"], bdb_name=bdb["name"],
                                 acl=acls[permission["redis_acl_uid"]])
    if users and roles:
        assert found["role_uids"] == [found["role_uid"]], "the binding's user has its role only"
    return found


def plan_ids(catalog: dict[str, Any]) -> tuple[str, dict[str, str]]:
    service = catalog["services"][0]
    return service["id"], {p["name"]: p["id"] for p in service["plans"]}


def stored_binding(broker: BrokerProcess, instance_id: str, binding_id: str) -> dict[str, Any] | None:
    """The broker's record of a binding, read from its state file."""
    db = sqlite3.connect(broker.data_dir / "broker.sqlite3")
    try:
        row = db.execute("SELECT doc FROM bindings WHERE instance_id = ? AND id = ?",
                         (instance_id, binding_id)).fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else None


def unfinished(broker: BrokerProcess) -> list[tuple[str, str]]:
    db = sqlite3.connect(broker.data_dir / "broker.sqlite3")
    try:
        return [(row[0], row[1]) for row in
                db.execute("SELECT id, state FROM operations WHERE state = 'in progress'").fetchall()]
    finally:
        db.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def broker_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LoopbackCluster]:
    cluster = LoopbackCluster(3, tmp_path_factory.mktemp("broker-cluster"))
    try:
        await cluster.start(timeout_s=180)
        await cluster.wait_ready(timeout_s=120)
        yield cluster
    finally:
        cluster.stop()
        assert cluster.leftover_pids() == [], "cluster processes left behind after teardown"


@pytest.fixture(scope="session")
def broker(broker_cluster: LoopbackCluster,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(broker_cluster, tmp_path_factory.mktemp("broker"))
    process.start()
    try:
        yield process
    finally:
        process.stop()
        assert not process.alive(), "broker left running"
        assert process.password not in process.log(), "the broker logged its password"
        assert broker_cluster.password not in process.log(), "the broker logged the cluster password"
