"""Helpers of the REDB tests: manifests, status, the database secret, Services and their
endpoints, a Redis client through a Service address, writes that tell which server took them."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tests.e2e.local.support import eventually, get, kubectl

from recluster.local.cluster import LocalCluster

NODE_SELECTOR = "app=redis-enterprise,redis.io/cluster=rec,redis.io/role=node"


def redb_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": name},
        "spec": {"memorySize": "100MB", **spec},
    }


def apply_redb(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> str:
    """'' when stored, else kubectl's error (the admission's refusal)."""
    result = kubectl(cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(body), check=False)
    return result.stderr if result.returncode else ""


def redb_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    result = kubectl(cluster, "-n", namespace, "get", "redb", name, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    status: dict[str, Any] = json.loads(result.stdout).get("status") or {}
    return status


def wait_active(cluster: LocalCluster, namespace: str, name: str, timeout: float = 300) -> dict[str, Any]:
    def active() -> dict[str, Any] | None:
        status = redb_status(cluster, namespace, name)
        return status if status.get("status") == "active" and status.get("specStatus") == "Valid" else None

    result: dict[str, Any] = eventually(f"REDB {name} active", active, timeout=timeout)
    return result


def secret_data(cluster: LocalCluster, namespace: str, name: str) -> dict[str, str] | None:
    result = kubectl(cluster, "-n", namespace, "get", "secret", name, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    data = json.loads(result.stdout).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def service(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any] | None:
    result = kubectl(cluster, "-n", namespace, "get", "service", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def endpoint_ips(cluster: LocalCluster, namespace: str, service_name: str) -> set[str]:
    """Ready addresses of a Service's EndpointSlices."""
    slices = get(cluster, namespace, "endpointslices", "-l", f"kubernetes.io/service-name={service_name}")
    return {
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def node_pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"]
    return items


def labelled_pods(cluster: LocalCluster, namespace: str, uid: str) -> list[dict[str, Any]]:
    return [
        p
        for p in node_pods(cluster, namespace)
        if (p["metadata"].get("labels") or {}).get(f"redis.io/bdb-{uid}") == uid
        and not p["metadata"].get("deletionTimestamp")
    ]


def client(host: str, port: int, password: str | None) -> redis.Redis:
    return redis.Redis(
        host=host, port=port, password=password or None, socket_timeout=3, socket_connect_timeout=3
    )


# --- which server took a write ---------------------------------------------------------------------
# A failover is over for a client when a *new* master takes its writes: the leaving master keeps
# taking writes during its hand-off (the node daemon's SIGTERM), and the Service still leads to it, so
# the first successful write after a fault says nothing about the failover. Every write here names
# the server that took it: its run_id (`INFO server`, new with every redis-server process) and its
# role, read in the same MULTI/EXEC. (bench/writes.py has the same for the benchmarks.)


def probe_client(host: str, port: int, password: str | None, timeout: float = 2) -> redis.Redis:
    """A client without redis-py's own retries (8.x retries a failed command 10 times with backoff
    by default, which would hide an outage and stretch the times)."""
    return redis.Redis(
        host=host,
        port=port,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def error_text(exc: Exception) -> str:
    """A failed write's error, short and without the key (so equal errors count together): redis-py
    words an error inside MULTI/EXEC "Command # 1 (SET k v) of pipeline caused error: READONLY ..."."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = re.sub(r"^Command # \d+ \(.*?\) of pipeline caused error: ", "", text)
    return f"{type(exc).__name__}: {text[:70]}"


@dataclass(frozen=True)
class Server:
    """A redis-server process: its run_id, its role (`master` / `slave`) and its pod (from the
    announced name `replica-announce-ip`, the pod's DNS name)."""

    run_id: str
    role: str
    pod: str


@dataclass(frozen=True)
class Taken:
    """A write a server acknowledged: its key, when the reply came (time.monotonic()), by whom."""

    key: str
    at: float
    server: Server

    def by_new_master(self, old: Server) -> bool:
        """Taken by another server than `old` (run_id), one that says it is master."""
        return self.server.run_id != old.run_id and self.server.role == "master"


def _identify(pipe: Any) -> None:
    pipe.info("server")
    pipe.execute_command("ROLE")
    pipe.config_get("replica-announce-ip")


def _server(info: dict[str, Any], role: list[Any], announce: dict[str, Any]) -> Server:
    name = announce.get("replica-announce-ip") or ""
    name = name.decode() if isinstance(name, bytes) else str(name)
    kind = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    return Server(str(info["run_id"]), kind, name if _is_ip(name) else name.split(".")[0])


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def write_on(host: str, port: int, password: str | None, key: str, timeout: float = 2) -> Taken | str:
    """One write through a fresh connection, with the run_id and role of the server that took it
    (one MULTI/EXEC); the error when the write failed."""
    connection = probe_client(host, port, password, timeout)
    try:
        pipe = connection.pipeline(transaction=True)
        pipe.set(key, key)
        _identify(pipe)
        ok, info, role, announce = pipe.execute()
        return Taken(key, time.monotonic(), _server(info, role, announce)) if ok else f"SET answered {ok!r}"
    except (redis.RedisError, OSError) as exc:
        return error_text(exc)
    finally:
        connection.close()


def server_on(host: str, port: int, password: str | None, timeout: float = 3) -> Server | None:
    """The server a fresh connection reaches, or None."""
    connection = probe_client(host, port, password, timeout)
    try:
        pipe = connection.pipeline(transaction=True)
        _identify(pipe)
        return _server(*pipe.execute())
    except (redis.RedisError, OSError):
        return None
    finally:
        connection.close()


def read_back(
    host: str, port: int, password: str | None, keys: list[str], timeout: float = 5
) -> tuple[Server, list[str]] | None:
    """The server a fresh connection reaches and which of `keys` (value = key) it lacks, read in one
    MULTI/EXEC; None when it could not be read."""
    connection = probe_client(host, port, password, timeout)
    try:
        pipe = connection.pipeline(transaction=True)
        _identify(pipe)
        pipe.mget(keys)
        info, role, announce, values = pipe.execute()
        missing = [k for k, v in zip(keys, values, strict=True) if v != k.encode()]
        return _server(info, role, announce), missing
    except (redis.RedisError, OSError):
        return None
    finally:
        connection.close()


@dataclass
class FailoverWrites:
    """Probe writes after a fault at `started` (time.monotonic()) against the master before it
    (`old`). The failover is over at the first write a *new* master took: another run_id, role master.
    first_any is the first successful write at all (the old way of counting: during a hand-off it is
    the leaving master's), last_old the last write the old master took, longest_gap the longest time
    without a successful write from the fault to first_new; errors: the failed writes by error."""

    old: Server
    started: float
    first_any: Taken | None = None
    first_new: Taken | None = None
    last_old: Taken | None = None
    old_writes: int = 0
    longest_gap: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    _last_ok: float | None = None

    def add(self, taken: Taken | str | None) -> None:
        if isinstance(taken, str):
            self.errors[taken] = self.errors.get(taken, 0) + 1
        if not isinstance(taken, Taken):
            return
        if self.first_new is None:
            self.longest_gap = max(self.longest_gap, taken.at - (self._last_ok or self.started))
            self._last_ok = taken.at
        self.first_any = self.first_any or taken
        if taken.server.run_id == self.old.run_id:
            self.last_old = taken
            self.old_writes += 1
        elif taken.by_new_master(self.old) and self.first_new is None:
            self.first_new = taken

    def since(self, taken: Taken | None) -> str:
        return "none" if taken is None else f"{taken.at - self.started:.2f} s"

    def summary(self) -> str:
        gap = self.longest_gap
        if self.first_new is None:  # the stretch without a write that is still going on
            gap = max(gap, time.monotonic() - (self._last_ok or self.started))
        errors = sorted(self.errors.items(), key=lambda item: -item[1])[:3]
        return (
            f"first successful write {self.since(self.first_any)}, first write on the new master "
            f"{self.since(self.first_new)}, longest gap {gap:.2f} s, last write on the "
            f"old master {self.since(self.last_old)} ({self.old_writes} writes)"
            + (f"; failed writes: {', '.join(f'{n} x {e}' for e, n in errors)}" if errors else "")
        )


def write_until_new_master(
    host: str, port: int, password: str | None, old: Server, started: float, timeout: float
) -> FailoverWrites:
    """Write every 50 ms, each on a fresh connection, until a new master takes a write; fails the
    test after `timeout` s (also when only the old master kept taking writes)."""
    writes = FailoverWrites(old, started)
    n = 0
    while writes.first_new is None:
        if time.monotonic() - started > timeout:
            pytest.fail(f"no write taken by a new master within {timeout:.0f} s: {writes.summary()}")
        writes.add(write_on(host, port, password, f"probe-{n}"))
        n += 1
        time.sleep(0.05)
    return writes


def delete_redbs(cluster: LocalCluster, namespace: str) -> None:
    kubectl(cluster, "-n", namespace, "delete", "redb", "--all", "--wait=false", check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        result = kubectl(cluster, "-n", namespace, "get", "redb", "-o", "name", check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return
        time.sleep(1)
