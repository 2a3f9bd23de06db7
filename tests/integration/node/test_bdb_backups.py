"""Export and import through the REST API on a loopback cluster with real shards and the real S3
server: the backup lands in the bucket with a matching manifest, an import replaces a database's
data, bad input is refused (400) or fails named in the bdb's status while the data stays, the
status resets, and the S3 secret is in no answer and no file the nodes wrote."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.s3 import S3Credentials, S3Location, S3Store
from recluster.local.s3server import S3Endpoint
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


def location(endpoint: S3Endpoint, **changes: Any) -> dict[str, Any]:
    return {"type": "s3", "bucket_name": endpoint.bucket, "subdir": "loopback",
            "access_key_id": endpoint.access_key_id, "secret_access_key": endpoint.secret_access_key,
            "endpoint_url": endpoint.url, **changes}


async def filled(api: Any, name: str, keys: int, prefix: str) -> tuple[dict[str, Any], aioredis.Redis]:
    bdb = await api.create_bdb({"name": name, "memory_size": 64 << 20, "replication": True,
                                "authentication_redis_pass": f"pw-{name}"})
    bdb = await api.wait_bdb_status(bdb["uid"], timeout_s=120)
    client = aioredis.Redis(host=bdb["endpoints"][0]["dns_name"], port=bdb["port"], password=f"pw-{name}")
    async with client.pipeline(transaction=False) as pipe:
        for i in range(keys):
            pipe.set(f"{prefix}:{i}", f"{prefix}-value-{i}")
        await pipe.execute()
    return bdb, client


async def test_export_then_import_through_the_rest_api(cluster3: LoopbackCluster,
                                                      s3_server: S3Endpoint) -> None:
    async with cluster3.api(1) as api:
        source, source_client = await filled(api, "backup-source", 3000, "src")
        target, target_client = await filled(api, "backup-target", 40, "old")
        try:
            await source_client.set("with-ttl", "x", ex=7200)
            started = await api.export_bdb(source["uid"], location(s3_server))
            assert started == {"uid": source["uid"], "export_status": "exporting", "export_progress": 0}
            done = await api.wait_bdb_transfer(source["uid"], "export", timeout_s=120)
            assert (done["export_status"], done["export_progress"]) == ("succeeded", 100), done
            manifest_name = done["export_location_written"]
            assert manifest_name.startswith("backup-source/") and manifest_name.endswith("/manifest.json")

            credentials = S3Credentials(s3_server.access_key_id, s3_server.secret_access_key)
            with S3Store(S3Location(s3_server.bucket, credentials, "loopback", s3_server.url)) as bucket:
                manifest = json.loads(bucket.get_bytes(manifest_name))
                rdb = bucket.get_bytes(manifest_name.replace("manifest.json", "shard-1.rdb"))
            assert manifest["bdb_uid"] == source["uid"] and manifest["shard_count"] == 1
            assert manifest["shards"][0]["sha256"] == hashlib.sha256(rdb).hexdigest()

            # an import replaces the target's data with exactly the backup's keys
            await api.import_bdb(target["uid"], {**location(s3_server), "filename": manifest_name})
            done = await api.wait_bdb_transfer(target["uid"], "import", timeout_s=120)
            assert done["import_status"] == "succeeded", done
            assert await target_client.dbsize() == 3001
            assert await target_client.get("src:2999") == b"src-value-2999"
            assert await target_client.get("old:1") is None
            assert 7000 < await target_client.ttl("with-ttl") <= 7200

            # the status resets to nothing
            await api.reset_bdb_status(target["uid"], "import")
            reset = await api.bdb(target["uid"])
            assert reset["import_status"] is None and reset["import_progress"] is None
        finally:
            await source_client.aclose()
            await target_client.aclose()
            for bdb in (source, target):
                await api.delete_bdb(bdb["uid"])


async def test_bad_input_is_named_and_the_database_keeps_its_data(cluster3: LoopbackCluster,
                                                                  s3_server: S3Endpoint) -> None:
    async with cluster3.api(0) as api:
        bdb, client = await filled(api, "backup-bad", 25, "keep")
        try:
            for body, field in ((location(s3_server, type="gs"), "export_location.type"),
                                (location(s3_server, bucket_name="Bad_Name"), "export_location.bucket_name"),
                                ({"type": "s3"}, "export_location.bucket_name")):
                with pytest.raises(ClusterApiError) as refused:
                    await api.export_bdb(bdb["uid"], body)
                assert refused.value.status == 400 and refused.value.body["field"] == field
                assert s3_server.secret_access_key not in str(refused.value.body)
            with pytest.raises(ClusterApiError) as refused:
                await api.import_bdb(bdb["uid"], location(s3_server))
            assert refused.value.body["field"] == "dataset_import_sources[0].filename"

            failures = [
                ("export", location(s3_server, secret_access_key="wrong-secret-key"), "no-permission",
                 "were refused"),
                ("export", location(s3_server, bucket_name="no-such-bucket"), "wrong-file-path",
                 "the bucket 'no-such-bucket' does not exist"),
                ("export", location(s3_server, endpoint_url="http://127.0.0.1:9"), "general-error",
                 "cannot be reached"),
                ("import", {**location(s3_server), "filename": "nothing/manifest.json"}, "wrong-file-path",
                 "no such object"),
            ]
            for kind, body, reason, message in failures:
                if kind == "export":
                    await api.export_bdb(bdb["uid"], body)
                else:
                    await api.import_bdb(bdb["uid"], body)
                done = await api.wait_bdb_transfer(bdb["uid"], kind, timeout_s=90)
                assert done[f"{kind}_status"] == "failed" and done[f"{kind}_failure_reason"] == reason, done
                assert message in done[f"{kind}_failure_message"]
                assert "wrong-secret-key" not in str(done) and s3_server.secret_access_key not in str(done)
                assert await client.dbsize() == 25 and await client.get("keep:3") == b"keep-value-3"
                await api.reset_bdb_status(bdb["uid"], kind)
        finally:
            await client.aclose()
            await api.delete_bdb(bdb["uid"])
    leaked = await asyncio.to_thread(files_holding, Path(cluster3.root), s3_server.secret_access_key.encode())
    assert leaked == [], f"the S3 secret is in files the nodes wrote (logs, state): {leaked}"


def files_holding(root: Path, secret: bytes) -> list[Path]:
    return [path for path in root.rglob("*")
            if path.is_file() and path.stat().st_size < 50 << 20 and secret in path.read_bytes()]
