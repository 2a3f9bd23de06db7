"""Export (a backup now) and import of a database's data: the work, given where its shards are.

Export: a snapshot of the shard through the replication protocol (clients/rdb_snapshot.py; from an
in-sync replica when there is one, so the master is not loaded), uploaded to the destination
(clients/s3.py or clients/directory_store.py) under <subdir>/<db name>/<UTC time>/, then the manifest
(api/backup.py) last: a backup is whole exactly when its manifest is there.

Import: everything is checked before the database is touched: the manifest (or a plain RDB file),
the engine version it needs, each file's size and sha256, and that redis-server loads it (a
temporary redis-server on a unix socket in the work directory, no TCP port). Only then the
database's data is replaced: FLUSHALL, and every key of the loaded files is copied with DUMP and
RESTORE (TTLs kept), which also reshards a backup of another layout. A bad location, refused
credentials, an unreachable endpoint, a corrupt or truncated file or a newer engine's backup thus
fail before the database changes, with a message naming the problem."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recluster.api.backup import (
    MANIFEST_NAME,
    BackupError,
    Destination,
    Manifest,
    MountDestination,
    ShardFile,
    backup_dir,
    check_file,
    check_loadable,
    engine_rdb_version,
    manifest_from_json,
    rdb_version,
)
from recluster.clients.directory_store import DirectoryStore, DirectoryStoreError
from recluster.clients.rdb_snapshot import SnapshotError, take_snapshot
from recluster.clients.s3 import S3Credentials, S3Error, S3Location, S3Store

Progress = Callable[[int], Awaitable[None]]
COPY_BATCH = 500
LOAD_TIMEOUT = 600.0


class Store(Protocol):
    def check(self) -> None: ...
    def put_bytes(self, data: bytes, name: str) -> None: ...
    def upload_file(self, path: Path, name: str) -> None: ...
    def get_bytes(self, name: str) -> bytes: ...
    def download_file(self, name: str, path: Path) -> None: ...
    def close(self) -> None: ...


class _Directory(DirectoryStore):
    def close(self) -> None:
        return None


def open_store(destination: Destination) -> Store:
    if isinstance(destination, MountDestination):
        return _Directory(destination.path)
    return S3Store(S3Location(
        bucket=destination.bucket_name,
        credentials=S3Credentials(destination.access_key_id, destination.secret_access_key),
        prefix=destination.subdir,
        endpoint_url=destination.endpoint_url,
        region=destination.region_name,
        ca_pem=destination.ca_cert,
    ))


@dataclass(frozen=True)
class ShardAddress:
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    tls: dict[str, Any] | None = None  # redis-py's ssl_* arguments (database_tls.node_client_tls)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls.get("ssl_ca_certs"))
        context.check_hostname = bool(self.tls.get("ssl_check_hostname", False))
        if self.tls.get("ssl_certfile"):
            context.load_cert_chain(self.tls["ssl_certfile"], self.tls.get("ssl_keyfile"))
        return context


_REASONS = {"InvalidAccessKeyId": "no-permission", "SignatureDoesNotMatch": "no-permission",
            "AccessDenied": "no-permission", "403": "no-permission", "NoSuchBucket": "wrong-file-path",
            "NoSuchKey": "wrong-file-path", "NoSuchDirectory": "wrong-file-path"}


async def _call(store: Store, method: Callable[..., object], *args: object) -> object:
    try:
        return await asyncio.to_thread(method, *args)
    except (S3Error, DirectoryStoreError) as exc:
        raise BackupError(str(exc), _REASONS.get(exc.code, "general-error")) from None


async def export_database(
    *, bdb_uid: int, bdb_name: str, engine_version: str, source: ShardAddress, destination: Destination,
    work_dir: Path, progress: Progress | None = None, now: datetime | None = None,
) -> tuple[str, Manifest]:
    """Take and upload a snapshot; returns (the backup's directory in the location, its manifest).
    BackupError names what failed; nothing of the database changes either way."""
    when = now or datetime.now(UTC)
    directory = backup_dir("", bdb_name, when)
    store = open_store(destination)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    rdb = work_dir / f"export-{bdb_uid}-{time.monotonic_ns()}.rdb"
    try:
        await _call(store, store.check)
        if progress:
            await progress(10)
        try:
            snapshot = await take_snapshot(source.host, source.port, rdb, username=source.username,
                                           password=source.password, tls=source.ssl_context())
        except SnapshotError as exc:
            raise BackupError(str(exc)) from None
        if progress:
            await progress(50)
        shard = ShardFile(1, "0-16383", "shard-1.rdb", snapshot.size, snapshot.sha256, snapshot.rdb_version)
        await _call(store, store.upload_file, rdb, directory + shard.name)
        manifest = Manifest(bdb_uid, bdb_name, engine_version, when.isoformat(), (shard,))
        await _call(store, store.put_bytes, manifest.to_json(), directory + MANIFEST_NAME)
        if progress:
            await progress(100)
        return directory, manifest
    finally:
        rdb.unlink(missing_ok=True)
        await asyncio.to_thread(store.close)


@dataclass(frozen=True)
class ImportResult:
    keys: int
    bytes: int
    seconds: float


async def _fetch(store: Store, filename: str, engine_version: str, work_dir: Path) -> list[tuple[Path, str]]:
    """The RDB files an import source names (path, object name), downloaded into work_dir and checked."""
    if filename.endswith(".json"):
        manifest = manifest_from_json(await _call(store, store.get_bytes, filename))  # type: ignore[arg-type]
        check_loadable(manifest, engine_version)
        base = filename.rpartition("/")[0]
        files = []
        for shard in manifest.shards:
            path = work_dir / f"import-{shard.index}.rdb"
            name = f"{base}/{shard.name}" if base else shard.name
            await _call(store, store.download_file, name, path)
            size, digest = await asyncio.to_thread(_measure, path)
            check_file(shard, size, digest)
            files.append((path, name))
        return files
    path = work_dir / "import-1.rdb"
    await _call(store, store.download_file, filename, path)
    with path.open("rb") as handle:
        version = rdb_version(handle.read(9))
    readable = engine_rdb_version(engine_version)
    if version > readable:
        raise BackupError(f"{filename} is RDB format {version}; this database runs {engine_version}, "
                          f"which reads RDB formats up to {readable}", "file-corrupted")
    return [(path, filename)]


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@contextlib.asynccontextmanager
async def _loaded(redis_server: str, rdb: Path, name: str) -> AsyncIterator[aioredis.Redis]:
    """A temporary redis-server that loaded `rdb` (its own directory, a unix socket, no TCP), or
    BackupError quoting why it could not load it."""
    directory = rdb.parent / f"load-{rdb.stem}"
    directory.mkdir(exist_ok=True)
    shutil.move(str(rdb), directory / "dump.rdb")
    # a unix socket's path must be short (108 bytes): its own small directory under the temp dir
    socket_dir = Path(tempfile.mkdtemp(prefix="rc-load-"))
    socket = socket_dir / "redis.sock"
    argv = [redis_server, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
            "--dir", str(directory), "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
            "--logfile", str(directory / "redis.log"), "--sanitize-dump-payload", "yes"]
    process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
    client = aioredis.Redis(unix_socket_path=str(socket), socket_timeout=60)
    try:
        deadline = time.monotonic() + LOAD_TIMEOUT
        while True:
            if process.returncode is not None:
                log = (directory / "redis.log").read_text(errors="replace").strip().splitlines()
                why = next((line.split(" # ", 1)[-1] for line in reversed(log) if " # " in line), "it exited")
                raise BackupError(f"{name} is corrupt or truncated: redis-server could not load it ({why})",
                                  "file-corrupted")
            try:
                if await client.ping():
                    break
            except (RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BackupError(f"loading {name} took longer than {LOAD_TIMEOUT:.0f}s")
            await asyncio.sleep(0.05)
        yield client
    finally:
        await client.aclose()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)


async def import_database(
    *, filename: str, source: Destination, engine_version: str, redis_server: str, target: ShardAddress,
    work_dir: Path, progress: Progress | None = None,
) -> ImportResult:
    """Replace the database's data (its master at `target`) with the backup or RDB at
    `filename` in `source`. Every check happens before the database is touched (see the module)."""
    started = time.monotonic()
    store = open_store(source)
    work = work_dir / f"import-{time.monotonic_ns()}"
    work.mkdir(parents=True)
    try:
        files = await _fetch(store, filename, engine_version, work)
        if progress:
            await progress(30)
        total = sum(path.stat().st_size for path, _ in files)
        async with contextlib.AsyncExitStack() as stack:
            loaded = [await stack.enter_async_context(_loaded(redis_server, path, name))
                      for path, name in files]
            if progress:
                await progress(50)
            keys = await _replace(loaded, target)
        if progress:
            await progress(100)
        return ImportResult(keys, total, time.monotonic() - started)
    finally:
        await asyncio.to_thread(store.close)
        shutil.rmtree(work, ignore_errors=True)


async def _replace(loaded: list[aioredis.Redis], target: ShardAddress) -> int:
    client = aioredis.Redis(host=target.host, port=target.port, username=target.username,
                            password=target.password, socket_timeout=60, socket_connect_timeout=5,
                            **(target.tls or {}))
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            raise BackupError(f"the database's master at {target.host}:{target.port} cannot be "
                              f"reached: {exc}") from None
        await client.flushall()
        copied = 0
        for source in loaded:
            async for batch in _batches(source):
                async with source.pipeline(transaction=False) as reads:
                    for key in batch:
                        reads.dump(key)
                        reads.pttl(key)
                    answers = await reads.execute()
                async with client.pipeline(transaction=False) as writes:
                    for i, key in enumerate(batch):
                        payload, ttl = answers[2 * i], answers[2 * i + 1]
                        if payload is not None:
                            writes.restore(key, max(int(ttl), 0), payload, replace=True)
                    await writes.execute()
                copied += len(batch)
        return copied
    finally:
        await client.aclose()


async def _batches(source: aioredis.Redis) -> AsyncIterator[list[bytes]]:
    cursor = 0
    while True:
        cursor, keys = await source.scan(cursor, count=COPY_BATCH)
        if keys:
            yield [key if isinstance(key, bytes) else key.encode() for key in keys]
        if cursor == 0:
            return
