"""Real redis-server processes for the backup tests (the fixture `redis_server`, in conftest.py):
one per call, on 127.0.0.1 (a free port), with the cluster's replication login (PSYNC, REPLCONF,
PING only) from a config file (no password in argv); stopped by their own pid at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
if not Path(REDIS_SERVER).exists():  # pragma: no cover - a machine without Redis cannot run these
    pytest.skip("redis-server is not installed", allow_module_level=True)

REPLICATION_USER = "recluster-replication"
REPLICATION_PASSWORD = "replication-password-for-tests"
ADMIN_PASSWORD = "admin-password-for-tests"


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=ADMIN_PASSWORD, socket_timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    started: list[RedisServer] = []

    def start(name: str = "shard", dbfilename: str = "dump.rdb", seed: Path | None = None) -> RedisServer:
        directory = tmp_path / name
        directory.mkdir()
        if seed is not None:
            shutil.copy(seed, directory / dbfilename)
        port = free_port()
        config = directory / "redis.conf"
        config.write_text("\n".join([
            "bind 127.0.0.1", f"port {port}", f"dir {directory}", f"dbfilename {dbfilename}", 'save ""',
            "appendonly no", f"user default on >{ADMIN_PASSWORD} ~* &* +@all",
            f"user {REPLICATION_USER} on >{REPLICATION_PASSWORD} +psync +replconf +ping", "",
        ]))
        config.chmod(0o600)
        log = (directory / "redis.log").open("ab")
        process = subprocess.Popen([REDIS_SERVER, str(config)], stdout=log, stderr=subprocess.STDOUT)
        server = RedisServer(port, directory, process)
        started.append(server)
        deadline = time.monotonic() + 20
        while True:  # waits for the server to answer PING (and to have loaded a seed RDB)
            try:
                if server.client().ping():
                    return server
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if process.poll() is not None:
                    tail = (directory / "redis.log").read_text()[-800:]
                    raise RuntimeError(f"redis-server {name} exited: {tail}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server {name} did not answer PING within 20 s")
            time.sleep(0.05)

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
