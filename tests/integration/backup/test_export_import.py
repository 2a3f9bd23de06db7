"""Export and import (node/backup.py) between real redis-servers and the real S3 server: the backup's
objects and manifest match, an import replaces the data with exactly the backup's keys, and each bad
input fails with its problem named while the database keeps its data."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.backup.redis_servers import (
    ADMIN_PASSWORD,
    REDIS_SERVER,
    REPLICATION_PASSWORD,
    REPLICATION_USER,
    RedisServer,
)

from recluster.api.backup import BackupError, MountDestination, S3Destination, manifest_from_json
from recluster.clients.s3 import S3Credentials, S3Location, S3Store
from recluster.local.s3server import S3Endpoint
from recluster.node.backup import ShardAddress, export_database, import_database

pytestmark = pytest.mark.integration
ENGINE = "7.0.15"


def destination(endpoint: S3Endpoint, **changes: Any) -> S3Destination:
    fields: dict[str, Any] = {"bucket_name": endpoint.bucket, "access_key_id": endpoint.access_key_id,
                              "secret_access_key": endpoint.secret_access_key, "subdir": "exports",
                              "region_name": endpoint.region, "endpoint_url": endpoint.url}
    fields.update(changes)
    return S3Destination(**fields)


def store(endpoint: S3Endpoint) -> S3Store:
    credentials = S3Credentials(endpoint.access_key_id, endpoint.secret_access_key)
    return S3Store(S3Location(endpoint.bucket, credentials, prefix="exports", endpoint_url=endpoint.url))


def replication(server: RedisServer) -> ShardAddress:
    return ShardAddress("127.0.0.1", server.port, REPLICATION_USER, REPLICATION_PASSWORD)


def admin(server: RedisServer) -> ShardAddress:
    return ShardAddress("127.0.0.1", server.port, None, ADMIN_PASSWORD)


def fill(server: RedisServer, count: int, prefix: str = "key") -> None:
    with server.client().pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.set(f"{prefix}:{i}", f"value-{i}")
        pipe.execute()


@pytest.fixture
def source_and_target(redis_server: Callable[..., RedisServer]) -> tuple[RedisServer, RedisServer]:
    source = redis_server("source")
    fill(source, 10_000)
    source.client().set("expiring", "soon", ex=3600)
    target = redis_server("target")
    fill(target, 50, prefix="old")
    return source, target


async def exported(source: RedisServer, s3_server: S3Endpoint, tmp_path: Path, name: str = "orders") -> str:
    directory, _ = await export_database(bdb_uid=7, bdb_name=name, engine_version=ENGINE,
                                         source=replication(source), destination=destination(s3_server),
                                         work_dir=tmp_path / "work")
    return directory


async def test_export_uploads_the_rdb_and_a_manifest_that_match(
        source_and_target: tuple[RedisServer, RedisServer], s3_server: S3Endpoint, tmp_path: Path) -> None:
    source, _ = source_and_target
    progress: list[int] = []

    async def report(percent: int) -> None:
        progress.append(percent)

    directory, manifest = await export_database(
        bdb_uid=7, bdb_name="orders", engine_version=ENGINE, source=replication(source),
        destination=destination(s3_server), work_dir=tmp_path / "work", progress=report)
    assert directory.startswith("orders/") and progress == [10, 50, 100]
    with store(s3_server) as bucket:
        names = sorted(bucket.list_names(directory))
        assert names == [directory + "manifest.json", directory + "shard-1.rdb"]
        stored = manifest_from_json(bucket.get_bytes(directory + "manifest.json"))
        rdb = bucket.get_bytes(directory + "shard-1.rdb")
    assert stored == manifest
    assert (stored.bdb_uid, stored.bdb_name, stored.engine_version) == (7, "orders", ENGINE)
    assert stored.shard_count == 1
    assert stored.shards[0].sha256 == hashlib.sha256(rdb).hexdigest() and stored.shards[0].size == len(rdb)
    assert stored.shards[0].slots == "0-16383" and stored.shards[0].rdb_version == 10
    assert not list((tmp_path / "work").iterdir())  # no snapshot left on the node


async def test_import_replaces_the_data_with_exactly_the_backups_keys(
        source_and_target: tuple[RedisServer, RedisServer], s3_server: S3Endpoint, tmp_path: Path) -> None:
    source, target = source_and_target
    directory = await exported(source, s3_server, tmp_path)
    result = await import_database(filename=f"{directory}manifest.json", source=destination(s3_server),
                                   engine_version=ENGINE, redis_server=REDIS_SERVER, target=admin(target),
                                   work_dir=tmp_path / "work")
    client = target.client()
    assert result.keys == 10_001 and client.dbsize() == 10_001
    assert client.get("key:9999") == b"value-9999" and client.get("old:1") is None
    assert 3500 < client.ttl("expiring") <= 3600
    assert not list((tmp_path / "work").iterdir())


async def test_mount_point_round_trip(source_and_target: tuple[RedisServer, RedisServer],
                                      tmp_path: Path) -> None:
    source, target = source_and_target
    mount = tmp_path / "mnt"
    mount.mkdir()
    directory, _ = await export_database(bdb_uid=7, bdb_name="orders", engine_version=ENGINE,
                                         source=replication(source), destination=MountDestination(str(mount)),
                                         work_dir=tmp_path / "work")
    assert (mount / directory / "manifest.json").exists()
    await import_database(filename=f"{directory}manifest.json", source=MountDestination(str(mount)),
                          engine_version=ENGINE, redis_server=REDIS_SERVER, target=admin(target),
                          work_dir=tmp_path / "work")
    assert target.client().dbsize() == 10_001


def unchanged(target: RedisServer) -> None:
    client = target.client()
    assert client.dbsize() == 50 and client.get("old:7") == b"value-7"


async def test_export_to_a_bad_location_is_named(source_and_target: tuple[RedisServer, RedisServer],
                                                 s3_server: S3Endpoint, tmp_path: Path) -> None:
    source, _ = source_and_target
    cases = [
        (destination(s3_server, bucket_name="missing-bucket"),
         "the bucket 'missing-bucket' does not exist"),
        (destination(s3_server, secret_access_key="wrong-secret"), "credentials (access key id"),
        (destination(s3_server, endpoint_url="http://127.0.0.1:9"), "the S3 endpoint cannot be reached"),
    ]
    for bad, message in cases:
        with pytest.raises(BackupError, match=re.escape(message)) as caught:
            await export_database(bdb_uid=7, bdb_name="orders", engine_version=ENGINE,
                                  source=replication(source), destination=bad, work_dir=tmp_path / "work")
        shown = str(caught.value)
        assert "wrong-secret" not in shown and s3_server.secret_access_key not in shown


async def test_each_bad_import_is_named_and_the_database_keeps_its_data(
        source_and_target: tuple[RedisServer, RedisServer], s3_server: S3Endpoint, tmp_path: Path) -> None:
    source, target = source_and_target
    directory = await exported(source, s3_server, tmp_path)
    with store(s3_server) as bucket:
        manifest = json.loads(bucket.get_bytes(directory + "manifest.json"))
        rdb = bucket.get_bytes(directory + "shard-1.rdb")
        # a copy whose RDB lost its end, one with bytes flipped, one made by a newer engine
        bucket.put_bytes(rdb[: len(rdb) // 2], "truncated/shard-1.rdb")
        bucket.put_bytes(json.dumps(manifest).encode(), "truncated/manifest.json")
        corrupt = bytearray(rdb)
        corrupt[len(rdb) // 2] ^= 0xFF
        bucket.put_bytes(bytes(corrupt), "corrupt/shard-1.rdb")
        bucket.put_bytes(json.dumps(manifest).encode(), "corrupt/manifest.json")
        newer = {**manifest, "engine_version": "7.4.1",
                 "shards": [{**manifest["shards"][0], "rdb_version": 12}]}
        bucket.put_bytes(json.dumps(newer).encode(), "newer/manifest.json")
        bucket.put_bytes(rdb, "newer/shard-1.rdb")
        # plain RDB files (no manifest): one cut short, one with a flipped byte
        bucket.put_bytes(rdb[: len(rdb) - 20], "plain-truncated.rdb")
        bucket.put_bytes(bytes(corrupt), "plain-corrupt.rdb")
        bucket.put_bytes(b"not an rdb at all", "plain-garbage.rdb")
    good = f"{directory}manifest.json"
    cases = [
        (destination(s3_server, bucket_name="missing-bucket"), good,
         "the bucket 'missing-bucket' does not exist"),
        (destination(s3_server, secret_access_key="wrong-secret"), good, "credentials"),
        (destination(s3_server, endpoint_url="http://127.0.0.1:9"), good, "cannot be reached"),
        (destination(s3_server), "nowhere/manifest.json", "no such object"),
        (destination(s3_server), "truncated/manifest.json", "shard-1.rdb is truncated or grown"),
        (destination(s3_server), "corrupt/manifest.json", "shard-1.rdb is corrupt"),
        (destination(s3_server), "newer/manifest.json", "made by engine 7.4.1 (RDB format 12); this database "
                                                        "runs 7.0.15, which reads RDB formats up to 10"),
        (destination(s3_server), "plain-truncated.rdb", "plain-truncated.rdb is corrupt or truncated: "
                                                        "redis-server could not load it"),
        (destination(s3_server), "plain-corrupt.rdb", "plain-corrupt.rdb is corrupt or truncated"),
        (destination(s3_server), "plain-garbage.rdb", "not an RDB file"),
    ]
    for bad, filename, message in cases:
        with pytest.raises(BackupError, match=re.escape(message)):
            await import_database(filename=filename, source=bad, engine_version=ENGINE,
                                  redis_server=REDIS_SERVER, target=admin(target), work_dir=tmp_path / "work")
        unchanged(target)
    assert not list((tmp_path / "work").iterdir())
