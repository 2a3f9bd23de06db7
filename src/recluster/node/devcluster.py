"""An N-node cluster on loopback addresses, in the foreground: the dev command and the tests use it.

Every node binds its own 127.x.y.z address with the same ports. Processes are stopped by the pids
they recorded (the daemon's Popen, the children's pid files), never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from recluster.api.ports import API_PORT as DEFAULT_API_PORT
from recluster.api.ports import CCS_PORT as DEFAULT_CCS_PORT
from recluster.api.ports import METRICS_PORT as DEFAULT_METRICS_PORT
from recluster.api.ports import SENTINEL_PORT as DEFAULT_SENTINEL_PORT
from recluster.api.ports import SENTINEL_TLS_PORT
from recluster.clients.cluster_api import ClusterApi
from recluster.node.processes import alive, kill_recorded, signal_recorded, write_private


def kill_leftovers(root: Path) -> int:
    """SIGKILL every process recorded in a pid file under `root` whose command line names a path
    under `root` (daemons and their children), e.g. after the launcher itself died. Returns how many."""
    return sum(kill_recorded(pid_file, str(root)) for pid_file in sorted(root.glob("**/*.pid")))


def random_loopback_base() -> str:
    """A 127.a.b. prefix unlikely to collide with another test run on this machine."""
    return f"127.{random.randint(20, 250)}.{random.randint(1, 250)}."


@dataclass
class LoopbackNode:
    index: int
    addr: str
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir.parent / f"node-{self.index}.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"node-{self.index}.log"

    def child_pid_files(self) -> list[tuple[Path, str]]:
        """(pid file, marker) of the node's redis-server and redis-sentinel children."""
        ccs, sentinel, tls = self.data_dir / "ccs", self.data_dir / "sentinel", self.data_dir / "sentinel-tls"
        found = [(ccs / "ccs.pid", str(ccs / "ccs.conf")),
                 (sentinel / "sentinel.pid", str(sentinel / "sentinel.conf")),
                 (tls / "sentinel.pid", str(tls / "sentinel.conf"))]
        shards = self.data_dir / "shards"
        if shards.exists():
            for shard_dir in shards.iterdir():
                found.append((shard_dir / "redis.pid", str(shard_dir / "redis.conf")))
        return found


@dataclass
class LoopbackCluster:
    size: int
    root: Path
    base: str = field(default_factory=random_loopback_base)
    first_host: int = 11
    username: str = "admin@recluster.local"
    password: str = field(default_factory=lambda: os.urandom(12).hex())
    cluster_name: str = "cluster.local"
    down_after_ms: int = 2000
    # longer than a cluster's default: a dev cluster's nodes are killed and started again by hand
    replica_move_grace_s: float = 15.0
    api_port: int = DEFAULT_API_PORT
    sentinel_port: int = DEFAULT_SENTINEL_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    ccs_port: int = DEFAULT_CCS_PORT
    handoff_timeout: float = 0.0
    # the database engines' binaries (`--engine`); empty: the node discovers them
    engines: tuple[str, ...] = ()
    # the nodes' --test-backup-interval (seconds between scheduled backups; 0: the databases' own)
    test_backup_interval_s: float = 0.0
    nodes: list[LoopbackNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            addr = f"{self.base}{self.first_host + i}"
            self.nodes.append(LoopbackNode(i, addr, self.root / f"node-{i}"))

    def argv(self, node: LoopbackNode) -> list[str]:
        return [sys.executable, "-m", "recluster.node", "--addr", node.addr, "--data-dir", str(node.data_dir),
                "--api-port", str(self.api_port), "--sentinel-port", str(self.sentinel_port),
                "--metrics-port", str(self.metrics_port), "--ccs-port", str(self.ccs_port),
                "--down-after-ms", str(self.down_after_ms),
                "--replica-move-grace", str(self.replica_move_grace_s),
                "--handoff-timeout", str(self.handoff_timeout),
                "--credentials-file", str(self.credentials_dir(node)),
                "--test-backup-interval", str(self.test_backup_interval_s),
                *(arg for engine in self.engines for arg in ("--engine", engine))]

    def credentials_dir(self, node: LoopbackNode) -> Path:
        """The node's admin credentials as a mounted Kubernetes Secret would give them (`username`,
        `password` files)."""
        return node.data_dir.parent / f"node-{node.index}-credentials"

    def write_credentials(self, password: str | None = None) -> None:
        """Every node's credentials files (with a new admin `password`: as when the REC's Secret
        changes); each file replaced whole."""
        if password is not None:
            self.password = password
        for node in self.nodes:
            directory = self.credentials_dir(node)
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name, value in (("username", self.username), ("password", self.password)):
                write_private(directory / f".{name}.new", value)
                (directory / f".{name}.new").replace(directory / name)

    def url(self, index: int) -> str:
        return f"https://{self.nodes[index].addr}:{self.api_port}"

    def api(self, index: int = 0, auth: bool = True) -> ClusterApi:
        if auth:
            return ClusterApi(self.url(index), self.username, self.password)
        return ClusterApi(self.url(index))

    def sentinels(self, indexes: list[int] | None = None) -> list[tuple[str, int]]:
        chosen = range(self.size) if indexes is None else indexes
        return [(self.nodes[i].addr, self.sentinel_port) for i in chosen]

    def sentinels_tls(self, indexes: list[int] | None = None) -> list[tuple[str, int]]:
        """The TLS sentinels (discovery of the TLS databases)."""
        chosen = range(self.size) if indexes is None else indexes
        return [(self.nodes[i].addr, SENTINEL_TLS_PORT) for i in chosen]

    def start_node(self, index: int) -> None:
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            return
        node.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the node's secrets
        if not (self.credentials_dir(node) / "password").exists():
            self.write_credentials()
        with open(node.log_file, "ab") as out:
            node.process = subprocess.Popen(self.argv(node), stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        node.pid_file.write_text(str(node.process.pid))

    def kill_node(self, index: int) -> None:
        """SIGKILL the node's daemon and every child it recorded (CCS, sentinel, shards)."""
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)
        for pid_file, marker in node.child_pid_files():
            kill_recorded(pid_file, marker)

    def pause_node(self, index: int, resume: bool = False) -> None:
        """SIGSTOP (SIGCONT with `resume`) the node's daemon and every child it recorded: the node
        stops answering while its connections stay open, as behind a network partition."""
        node = self.nodes[index]
        sig = signal.SIGCONT if resume else signal.SIGSTOP
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(sig)
        for pid_file, marker in node.child_pid_files():
            signal_recorded(pid_file, sig, marker)

    def terminate_node(self, index: int, timeout: float = 60.0) -> None:
        """SIGTERM the daemon (graceful: it hands its masters over and stops its children)."""
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
            try:
                node.process.wait(timeout)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)
        for pid_file, marker in node.child_pid_files():
            kill_recorded(pid_file, marker)

    def stop(self) -> None:
        for i in range(self.size):
            with contextlib.suppress(Exception):
                self.kill_node(i)

    def leftover_pids(self) -> list[int]:
        pids = []
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                pids.append(node.process.pid)
            for pid_file, _ in node.child_pid_files():
                with contextlib.suppress(OSError, ValueError):
                    pid = int(pid_file.read_text())
                    if alive(pid):
                        pids.append(pid)
        return pids

    async def wait_api(self, index: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with self.api(index, auth=False) as api:
            while True:
                try:
                    await api.bootstrap_status()
                    return
                except httpx.HTTPError as exc:
                    process = self.nodes[index].process
                    if process is not None and process.poll() is not None:
                        tail = self.nodes[index].log_file.read_text()[-2000:]
                        raise RuntimeError(f"node {index} exited with {process.returncode}:\n{tail}") from exc
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"node {index} REST API not answering after {timeout_s:.0f}s: "
                                           f"{exc!r}; see {self.nodes[index].log_file}") from exc
                    await asyncio.sleep(0.2)

    async def start(self, timeout_s: float = 180.0) -> None:
        """Start every node, create the cluster on the first, join the rest."""
        for i in range(self.size):
            self.start_node(i)
        await asyncio.gather(*(self.wait_api(i) for i in range(self.size)))
        # credentials are sent from the start: GET /v1/bootstrap needs them once the node is a member
        async with self.api(0) as api:
            await api.create_cluster(self.cluster_name, self.username, self.password)
            await api.wait_bootstrap(timeout_s)
        for i in range(1, self.size):
            async with self.api(i) as api:
                await api.join_cluster([self.nodes[0].addr], self.username, self.password)
                await api.wait_bootstrap(timeout_s)

    async def wait_ready(self, indexes: list[int] | None = None, timeout_s: float = 120.0) -> None:
        chosen = list(range(self.size)) if indexes is None else indexes
        deadline = time.monotonic() + timeout_s
        for i in chosen:
            async with httpx.AsyncClient(verify=False) as client:  # noqa: S501
                while True:
                    try:
                        response = await client.get(f"{self.url(i)}/v1/ready", timeout=5)
                        if response.status_code == 200:
                            break
                        reason = response.json().get("reason")
                    except httpx.HTTPError as exc:
                        reason = repr(exc)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"node {i} not ready after {timeout_s:.0f}s: {reason}")
                    await asyncio.sleep(0.3)
