"""A consistent RDB snapshot of a running shard, taken as a replica takes it (what `redis-cli --rdb`
does): `REPLCONF rdb-only 1` and `PSYNC ? -1` make the shard write an RDB of one instant (a fork,
as BGSAVE) and send it; it never becomes our replica and nothing of its data changes. Works against
a master or a replica (a replica serves it from its own copy, so the master is not loaded), with
only the replication login's commands (PSYNC, REPLCONF, PING).

The bytes are streamed into a file while hashed; the result says size, sha256 and RDB format."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
# While the shard forks and writes the RDB it sends a newline every second: a silence longer than
# this means it is gone.
SILENCE_TIMEOUT = 30.0


class SnapshotError(Exception):
    """The snapshot could not be taken; the message says from where and why."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    size: int
    sha256: str
    rdb_version: int
    seconds: float


def _command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def _line(reader: asyncio.StreamReader, where: str) -> bytes:
    try:
        line = await asyncio.wait_for(reader.readline(), SILENCE_TIMEOUT)
    except TimeoutError:
        raise SnapshotError(f"{where} sent nothing for {SILENCE_TIMEOUT:.0f}s") from None
    if not line:
        raise SnapshotError(f"{where} closed the connection")
    return line.rstrip(b"\r\n")


async def take_snapshot(
    host: str,
    port: int,
    path: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    tls: ssl.SSLContext | None = None,
    limit: float = 3600.0,
) -> Snapshot:
    """Write an RDB of the shard at host:port to `path`; SnapshotError on any failure (the partial
    file is removed). `limit` (seconds) bounds the whole transfer."""
    where = f"shard {host}:{port}"
    started = time.monotonic()
    try:
        return await asyncio.wait_for(
            _take(host, port, path, username, password, tls, where, started), limit)
    except TimeoutError:
        _remove(path)
        raise SnapshotError(f"the snapshot of {where} took longer than {limit:.0f}s") from None
    except (OSError, SnapshotError) as exc:
        _remove(path)
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(f"the snapshot of {where} failed: {exc.strerror or exc}") from None


async def _take(host: str, port: int, path: Path, username: str | None, password: str | None,
                tls: ssl.SSLContext | None, where: str, started: float) -> Snapshot:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=tls, limit=CHUNK), 10.0)
    try:
        if password is not None:
            writer.write(_command("AUTH", *([username] if username else []), password))
            if not (await _line(reader, where)).startswith(b"+OK"):
                raise SnapshotError(f"{where} refused the login {username or 'default'}")
        writer.write(_command("REPLCONF", "rdb-only", "1"))
        await writer.drain()
        await _line(reader, where)  # +OK, or an error from an engine older than 7.0: a normal sync then
        writer.write(_command("PSYNC", "?", "-1"))
        await writer.drain()
        header = b""
        while not header:  # keep-alive newlines while the shard forks and writes
            header = await _line(reader, where)
        if header.startswith(b"-"):
            raise SnapshotError(f"{where} refused the sync: {header[1:].decode(errors='replace')}")
        if header.startswith(b"+FULLRESYNC"):
            header = b""
            while not header:
                header = await _line(reader, where)
        if not header.startswith(b"$") or header.startswith(b"$EOF:"):
            raise SnapshotError(f"{where} sent {header[:40]!r} instead of an RDB")
        size = int(header[1:])
        digest = hashlib.sha256()
        left = size
        first = b""
        with path.open("wb") as out:
            while left:
                try:
                    chunk = await asyncio.wait_for(reader.read(min(CHUNK, left)), SILENCE_TIMEOUT)
                except TimeoutError:
                    raise SnapshotError(
                        f"{where} stopped sending the RDB ({size - left} of {size} bytes)") from None
                if not chunk:
                    raise SnapshotError(f"{where} closed the connection after {size - left} of {size} bytes")
                if len(first) < 9:
                    first += chunk[: 9 - len(first)]
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        if first[:5] != b"REDIS" or not first[5:9].isdigit():
            raise SnapshotError(f"{where} sent something that is not an RDB")
        return Snapshot(path, size, digest.hexdigest(), int(first[5:9]), time.monotonic() - started)
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(writer.wait_closed(), 5.0)


def _remove(path: Path) -> None:
    """The partial file of a failed snapshot goes."""
    path.unlink(missing_ok=True)
