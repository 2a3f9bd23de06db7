"""A write probe for databases: one write that tells which server took it, the record of the writes
around a failover, WAIT-confirmed writes and reading them back from a given server. The e2e tests
and the benchmarks (bench/) measure failovers with it.

A failover is over for a client when a *new* master takes its writes. The leaving master keeps taking
writes while it hands its role over (the node daemon's SIGTERM asks Sentinel to fail over and waits),
and the Service or Sentinel still lead to it, so the first successful write after a fault says
nothing about the failover. Every write here names the server that took it: its `run_id` (`INFO
server`, new with every redis-server process, so a restarted master is a new server too) and its role
at that moment, read in the same MULTI/EXEC as the write.

Clients are made without redis-py's own retries (8.x retries a failed command 10 times with backoff
by default, which would hide outages and add seconds to the figures).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from recluster.clients.redis_retry import no_retry_sync


def connect(host: str, port: int, password: str | None, timeout: float = 2) -> redis.Redis:
    return redis.Redis(
        host=host,
        port=port,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=no_retry_sync(),
    )


def error_text(exc: Exception) -> str:
    """A failed write's error, short and without the key (so equal errors count together): redis-py
    words an error inside MULTI/EXEC "Command # 1 (SET k v) of pipeline caused error: READONLY ..."."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = re.sub(r"^Command # \d+ \(.*?\) of pipeline caused error: ", "", text)
    return f"{type(exc).__name__}: {text[:70]}"


@dataclass(frozen=True)
class Server:
    """A redis-server process as a client saw it: its run_id, its role (`master` or `slave`) and the
    address it announces (`replica-announce-ip`: its node's address, on Kubernetes the pod IP)."""

    run_id: str
    role: str
    addr: str


@dataclass(frozen=True)
class Taken:
    """A write a server acknowledged: its key, when the reply came (time.monotonic()) and by whom."""

    key: str
    at: float
    server: Server

    def by_new_master(self, old: Server) -> bool:
        """Taken by another server than `old` (run_id), one that says it is master."""
        return self.server.run_id != old.run_id and self.server.role == "master"


def _server(info: dict[str, Any], role: Sequence[Any], announce: dict[str, Any]) -> Server:
    addr = announce.get("replica-announce-ip") or ""
    addr = addr.decode() if isinstance(addr, bytes) else str(addr)
    kind = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    return Server(str(info["run_id"]), kind, addr)


def identify(connection: redis.Redis) -> Server:
    """The server a client reaches (raises the client's errors)."""
    pipe = connection.pipeline(transaction=True)
    pipe.info("server")
    pipe.execute_command("ROLE")  # type: ignore[no-untyped-call]
    pipe.config_get("replica-announce-ip")
    info, role, announce = pipe.execute()
    return _server(info, role, announce)


def take(connection: redis.Redis, key: str, value: str) -> Taken:
    """SET, `INFO server`, ROLE and `CONFIG GET replica-announce-ip` in one MULTI/EXEC, so the server
    and its role are those of the moment of the write (raises the client's errors: READONLY from a
    replica, a closed connection ...)."""
    pipe = connection.pipeline(transaction=True)
    pipe.set(key, value)
    pipe.info("server")
    pipe.execute_command("ROLE")  # type: ignore[no-untyped-call]
    pipe.config_get("replica-announce-ip")
    ok, info, role, announce = pipe.execute()
    if not ok:
        raise redis.ResponseError(f"SET {key} answered {ok!r}")
    return Taken(key, time.monotonic(), _server(info, role, announce))


def try_write(
    host: str, port: int, password: str | None, key: str, value: str = "1", timeout: float = 2
) -> Taken | str:
    """One write through a fresh connection (`take`); the error when it failed."""
    connection = connect(host, port, password, timeout)
    try:
        return take(connection, key, value)
    except (redis.RedisError, OSError) as exc:
        return error_text(exc)
    finally:
        connection.close()


def write_on(
    host: str, port: int, password: str | None, key: str, value: str = "1", timeout: float = 2
) -> Taken | None:
    """One write through a fresh connection (`take`); None when it failed."""
    taken = try_write(host, port, password, key, value, timeout)
    return taken if isinstance(taken, Taken) else None


def server_on(host: str, port: int, password: str | None, timeout: float = 2) -> Server | None:
    """Which server a fresh connection reaches (None when it reaches none)."""
    connection = connect(host, port, password, timeout)
    try:
        return identify(connection)
    except (redis.RedisError, OSError):
        return None
    finally:
        connection.close()


def write_confirmed(
    host: str, port: int, password: str | None, keys: Sequence[str], wait_ms: int = 2000
) -> tuple[Server | None, list[str]]:
    """SET each key (value = key) on one connection, then `WAIT 1 <wait_ms>` for each: the server
    that took them and the keys a replica confirmed."""
    connection = connect(host, port, password, timeout=wait_ms / 1000 + 3)
    confirmed: list[str] = []
    server: Server | None = None
    try:
        server = identify(connection)
        for key in keys:
            connection.set(key, key)
            if int(connection.execute_command("WAIT", 1, wait_ms)) >= 1:  # type: ignore[no-untyped-call]
                confirmed.append(key)
    except (redis.RedisError, OSError):
        pass
    finally:
        connection.close()
    return server, confirmed


def read_back(
    host: str, port: int, password: str | None, keys: Sequence[str], timeout: float = 5
) -> tuple[Server, list[str]] | None:
    """The server a fresh connection reaches and the keys (value = key) it does not hold, read in one
    MULTI/EXEC with its run_id and role; None when it could not be read."""
    connection = connect(host, port, password, timeout)
    try:
        pipe = connection.pipeline(transaction=True)
        pipe.info("server")
        pipe.execute_command("ROLE")  # type: ignore[no-untyped-call]
        pipe.config_get("replica-announce-ip")
        if keys:
            pipe.mget(list(keys))
        info, role, announce, *values = pipe.execute()
        found = values[0] if keys else []
        missing = [k for k, v in zip(keys, found, strict=True) if v != k.encode()]
        return _server(info, role, announce), missing
    except (redis.RedisError, OSError):
        return None
    finally:
        connection.close()


@dataclass
class FailoverWrites:
    """The probe writes after a fault at `started` (time.monotonic()), against the master that was
    there before (`old`, its run_id). The failover is over at the first write a *new* master took: a
    server with another run_id that says it is master (a restarted old master is another server too).

    - first_any: the first successful write at all (the old way of counting; during a hand-off it is
      the leaving master's);
    - first_new: the first write on a new master (the failover time);
    - last_old: the last write the old master took (how long its hand-off kept taking writes; those
      after the new master's first are most likely lost, they are counted in old_after_new);
    - longest_gap: the longest time without any successful write, from the fault to first_new;
    - errors: the failed writes, by error.
    """

    old: Server
    started: float
    first_any: Taken | None = None
    first_new: Taken | None = None
    last_old: Taken | None = None
    old_writes: list[Taken] = field(default_factory=list)
    old_after_new: int = 0
    longest_gap: float = 0.0
    attempts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    _last_ok: float | None = None

    def add(self, taken: Taken | str | None) -> None:
        """One attempt: the write a server took, or the error (or None) when it failed."""
        self.attempts += 1
        if isinstance(taken, str):
            self.errors[taken] = self.errors.get(taken, 0) + 1
        if not isinstance(taken, Taken):
            return
        if self.first_new is None:
            self.longest_gap = max(self.longest_gap, taken.at - (self._last_ok or self.started))
            self._last_ok = taken.at
        if self.first_any is None:
            self.first_any = taken
        if taken.server.run_id == self.old.run_id:
            self.last_old = taken
            self.old_writes.append(taken)
            if self.first_new is not None:
                self.old_after_new += 1
        elif taken.by_new_master(self.old) and self.first_new is None:
            self.first_new = taken

    def since(self, taken: Taken | None) -> float | None:
        return None if taken is None else taken.at - self.started

    def gap_so_far(self, now: float) -> float:
        """The longest gap, the current stretch without a write included (for a run that gave up)."""
        if self.first_new is not None:
            return self.longest_gap
        return max(self.longest_gap, now - (self._last_ok or self.started))

    def summary(self) -> str:
        def secs(value: float | None) -> str:
            return "none" if value is None else f"{value:.2f} s"

        first, new = self.first_any, self.first_new
        by_old = " (old master)" if first is not None and first.server.run_id == self.old.run_id else ""
        on = f" ({new.server.addr or new.server.run_id[:8]})" if new is not None else ""
        errors = sorted(self.errors.items(), key=lambda item: -item[1])[:3]
        return (
            f"first successful write {secs(self.since(first))}{by_old}, "
            f"first write on the new master {secs(self.since(new))}{on}, "
            f"longest gap {self.gap_so_far(time.monotonic()):.2f} s, "
            f"last write on the old master {secs(self.since(self.last_old))} "
            f"({len(self.old_writes)} writes, {self.old_after_new} after the new master's first)"
            + (f"; failed writes: {', '.join(f'{n} x {e}' for e, n in errors)}" if errors else "")
        )


def probe_failover(
    host: str,
    port: int,
    password: str | None,
    old: Server,
    started: float,
    prefix: str,
    timeout: float,
    tail: float = 0.0,
    interval: float = 0.05,
    attempt_timeout: float = 2,
) -> FailoverWrites:
    """Write every `interval` s, each on a fresh connection, until a new master took a write and
    `tail` seconds more passed (to see whether the old master still takes writes then), or until
    `timeout` s after `started` (then first_new is None). Keys `<prefix>-<n>`, value = key (so
    read_back tells which the new master lacks)."""
    writes = FailoverWrites(old, started)
    n = 0
    while True:
        key = f"{prefix}-{n}"
        writes.add(try_write(host, port, password, key, key, timeout=attempt_timeout))
        n += 1
        now = time.monotonic()
        if writes.first_new is not None and now - writes.first_new.at >= tail:
            return writes
        if now - started > timeout:
            return writes
        time.sleep(interval)
