"""Export and import on the local cluster (issue 20), in the REDB session's REC: the S3 server runs on
the cluster's bridge address, so the node pods reach it. A replicated REDB's database with 100,000
keys is exported through the REC's REST API: its objects and manifest are in the bucket with
checksums that match; an import into another REDB's database replaces its data with exactly those
keys; a new REDB made from the backup (its restore annotations and a Secret with the keys) ends
active with exactly those keys; after a failover of the source's master, an export still
succeeds. The source REDB has scheduled backups (`backup: {interval: 1, s3: ...}`, keys in a Secret):
one at creation shown in status.backupInfo, and after the failover another (a new subdir starts the
schedule at once) holding the 100,000 keys; the S3 secret is in no status, event or log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.e2e.redb.conftest import RedbEnv
from tests.e2e.redb.support import client
from tests.e2e.security.test_no_secret_leaks import haystacks

from recluster.clients.cluster_api import ClusterApi
from recluster.clients.s3 import S3Credentials, S3Location, S3Store
from recluster.local.harness import (
    apply_redb,
    eventually,
    get,
    kubectl,
    node_pods,
    redb_manifest,
    redb_status,
    secret_data,
    service,
    wait_active,
)
from recluster.local.s3server import S3Endpoint, start_s3_server, stop_s3_server
from recluster.operator.redb.restore import RESTORE_CREDENTIALS, RESTORE_FROM, RESTORED

pytestmark = pytest.mark.e2e
KEYS = 100_000


@pytest.fixture(scope="module")
def cluster_s3(redb_env: RedbEnv, s3_binary: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """The S3 server on the cluster's bridge address (198.18.x.1), reachable from the pods."""
    state = tmp_path_factory.mktemp("s3-cluster")
    _, endpoint = start_s3_server(s3_binary, state, host=redb_env.cluster.layout.bridge_address)
    try:
        yield endpoint
    finally:
        stop_s3_server(state)


def location(endpoint: S3Endpoint, **extra: Any) -> dict[str, Any]:
    return {"type": "s3", "bucket_name": endpoint.bucket, "subdir": "e2e",
            "access_key_id": endpoint.access_key_id, "secret_access_key": endpoint.secret_access_key,
            "endpoint_url": endpoint.url, **extra}


def rest_api(env: RedbEnv) -> ClusterApi:
    """The REC's REST API on a node pod (pod addresses are reachable from this machine)."""
    credentials = eventually("the REC secret", lambda: secret_data(env.cluster, env.namespace, "rec"),
                             timeout=30)
    address = node_pods(env.cluster, env.namespace)[0]["status"]["podIP"]
    return ClusterApi(f"https://{address}:9443", credentials["username"], credentials["password"])


def database(env: RedbEnv, name: str, annotations: dict[str, str] | None = None,
             **spec: Any) -> tuple[int, redis.Redis]:
    manifest = redb_manifest(name, **spec)
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    assert apply_redb(env.cluster, env.namespace, manifest) == ""
    status = wait_active(env.cluster, env.namespace, name)
    password = eventually("the secret", lambda: secret_data(env.cluster, env.namespace, f"redb-{name}"),
                          timeout=60)["password"]
    svc = eventually(f"Service {name}", lambda: service(env.cluster, env.namespace, name), timeout=60)
    connection = client(svc["spec"]["clusterIP"], int(status["internalEndpoints"][0]["port"]), password)
    eventually(f"a PING through Service {name}", lambda: _pings(connection), timeout=60)
    return int(status["databaseUID"]), connection


def _pings(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except redis.RedisError:
        return False


def fill(connection: redis.Redis, count: int, prefix: str) -> None:
    for start in range(0, count, 10_000):
        with connection.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 10_000, count)):
                pipe.set(f"{prefix}:{i}", f"{prefix}-{i}")
            pipe.execute()


async def export(api: ClusterApi, uid: int, endpoint: S3Endpoint) -> dict[str, Any]:
    await api.export_bdb(uid, location(endpoint))
    done: dict[str, Any] = await api.wait_bdb_transfer(uid, "export", timeout_s=300)
    assert done["export_status"] == "succeeded", done
    return done


def scheduled(endpoint: S3Endpoint, subdir: str) -> dict[str, Any]:
    """The REDB's spec.backup: every hour to the S3 server, the keys in Secret bk-backup-keys."""
    return {"interval": 1, "s3": {"awsSecretName": "bk-backup-keys", "bucketName": endpoint.bucket,
                                  "subdir": subdir, "endpointUrl": endpoint.url}}


def backup_info(env: RedbEnv, name: str) -> dict[str, Any]:
    return dict(redb_status(env.cluster, env.namespace, name).get("backupInfo") or {})


def succeeded_after(env: RedbEnv, name: str, previous: str | None) -> dict[str, Any] | None:
    info = backup_info(env, name)
    done = info.get("backupStatus") == "succeeded" and info.get("lastBackupTime") not in (None, previous)
    return info if done else None


def manifests(endpoint: S3Endpoint, subdir: str) -> list[dict[str, Any]]:
    credentials = S3Credentials(endpoint.access_key_id, endpoint.secret_access_key)
    with S3Store(S3Location(endpoint.bucket, credentials, subdir, endpoint.url)) as bucket:
        return [json.loads(bucket.get_bytes(name)) for name in sorted(bucket.list_names())
                if name.endswith("manifest.json")]


def test_export_import_and_export_after_a_failover(redb_env: RedbEnv, cluster_s3: S3Endpoint) -> None:
    keys = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bk-backup-keys"},
            "stringData": {"AWS_ACCESS_KEY_ID": cluster_s3.access_key_id,
                           "AWS_SECRET_ACCESS_KEY": cluster_s3.secret_access_key}}
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "apply", "-f", "-", input=json.dumps(keys))
    created = time.monotonic()
    source_uid, source = database(redb_env, "bk-source", replication=True,
                                  backup=scheduled(cluster_s3, "scheduled"))
    # a scheduled backup at creation, shown in status.backupInfo with the next run an hour later
    first = eventually("the backup at creation in status.backupInfo",
                       lambda: succeeded_after(redb_env, "bk-source", None), timeout=120)
    print(f"scheduled backup at creation shown {time.monotonic() - created:.1f}s after the REDB was applied")
    last = datetime.fromisoformat(first["lastBackupTime"])
    assert 3500 <= (datetime.fromisoformat(first["nextBackupTime"]) - last).total_seconds() <= 3600
    assert first["failuresSinceLastSuccess"] == 0
    assert [m["bdb_name"] for m in manifests(cluster_s3, "scheduled")] == ["bk-source"]
    target_uid, target = database(redb_env, "bk-target")
    fill(source, KEYS, "k")
    fill(target, 30, "old")
    eventually("both shards of bk-source active",
               lambda: redb_status(redb_env.cluster, redb_env.namespace, "bk-source").get("shardStatuses")
               == {"active": 2}, timeout=180)

    async def scenario() -> None:
        async with rest_api(redb_env) as api:
            done = await export(api, source_uid, cluster_s3)
            manifest_name = done["export_location_written"]
            credentials = S3Credentials(cluster_s3.access_key_id, cluster_s3.secret_access_key)
            with S3Store(S3Location(cluster_s3.bucket, credentials, "e2e", cluster_s3.url)) as bucket:
                manifest = json.loads(bucket.get_bytes(manifest_name))
                rdb = bucket.get_bytes(manifest_name.replace("manifest.json", "shard-1.rdb"))
            assert manifest["bdb_name"] == "bk-source" and manifest["shard_count"] == 1
            assert manifest["shards"][0]["sha256"] == hashlib.sha256(rdb).hexdigest()
            assert manifest["shards"][0]["size"] == len(rdb)

            await api.import_bdb(target_uid, {**location(cluster_s3), "filename": manifest_name})
            done = await api.wait_bdb_transfer(target_uid, "import", timeout_s=300)
            assert done["import_status"] == "succeeded", done
            assert target.dbsize() == KEYS and target.get("k:99999") == b"k-99999"
            assert target.get("old:1") is None

            # a new REDB from the backup: the restore annotations, the keys in a Secret
            keys = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bk-s3-keys"},
                    "stringData": {"access_key_id": cluster_s3.access_key_id,
                                   "secret_access_key": cluster_s3.secret_access_key}}
            kubectl(redb_env.cluster, "-n", redb_env.namespace, "apply", "-f", "-", input=json.dumps(keys))
            source = {key: value for key, value in location(cluster_s3).items() if "key" not in key}
            _, restored = database(redb_env, "bk-restored", {
                RESTORE_FROM: json.dumps({**source, "filename": manifest_name}),
                RESTORE_CREDENTIALS: "bk-s3-keys"})
            result = eventually("the restored annotation", lambda: (get(
                redb_env.cluster, redb_env.namespace, "redb", "bk-restored")["metadata"].get("annotations")
                or {}).get(RESTORED), timeout=300)
            assert result == "succeeded"
            assert restored.dbsize() == KEYS and restored.get("k:12345") == b"k-12345"
            assert redb_status(redb_env.cluster, redb_env.namespace, "bk-restored")["status"] == "active"

            # a failover of the source's master, then an export again
            before = {s["uid"]: s["role"] for s in await api.shards(source_uid)}
            await api.fail_over_bdb(source_uid)
            deadline = asyncio.get_running_loop().time() + 120
            while {s["uid"]: s["role"] for s in await api.shards(source_uid)} == before:
                assert asyncio.get_running_loop().time() < deadline, "the master did not move within 120 s"
                await asyncio.sleep(1)
            await api.reset_bdb_status(source_uid, "export")
            again = await export(api, source_uid, cluster_s3)
            assert again["export_location_written"] != manifest_name

    asyncio.run(scenario())

    # scheduled backups continue after the failover: a new subdir starts the schedule at once, and the
    # backup (from whichever shard is replica now) holds the 100,000 keys
    started = time.monotonic()
    patch = {"spec": {"backup": scheduled(cluster_s3, "scheduled-after-failover")}}
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "patch", "redb", "bk-source", "--type", "merge",
            "-p", json.dumps(patch))
    after_failover = eventually("a scheduled backup after the failover",
                                lambda: succeeded_after(redb_env, "bk-source", first["lastBackupTime"]),
                                timeout=180)
    print(f"scheduled backup after the failover shown {time.monotonic() - started:.1f}s after the change")
    started = time.monotonic()
    [after] = manifests(cluster_s3, "scheduled-after-failover")
    assert after["bdb_uid"] == source_uid and after["total_size"] > 1_000_000, after

    # a wrong key in the Secret: sent at once, the backup fails, and says why (status and a Warning)
    wrong = "wrong-secret-key-of-the-e2e-test"
    set_key = {"stringData": {"AWS_SECRET_ACCESS_KEY": wrong}}
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "patch", "secret", "bk-backup-keys", "-p",
            json.dumps(set_key))
    failed = eventually("the failed backup in status.backupInfo", lambda: (
        info if (info := backup_info(redb_env, "bk-source")).get("backupStatus") == "failed" else None),
        timeout=120)
    assert failed["backupFailureReason"] == "no-permission" and failed["failuresSinceLastSuccess"] >= 1
    eventually("a BackupFailed Warning", lambda: [
        e for e in get(redb_env.cluster, redb_env.namespace, "events")["items"]
        if e["reason"] == "BackupFailed" and e["type"] == "Warning"
        and e["involvedObject"]["name"] == "bk-source"], timeout=60)
    # the right key again: the next backup succeeds at once (a new location starts the schedule)
    set_key["stringData"]["AWS_SECRET_ACCESS_KEY"] = cluster_s3.secret_access_key
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "patch", "secret", "bk-backup-keys", "-p",
            json.dumps(set_key))
    fixed = eventually("a backup after the key is fixed",
                       lambda: succeeded_after(redb_env, "bk-source", after_failover["lastBackupTime"]),
                       timeout=120)
    assert fixed["failuresSinceLastSuccess"] == 0
    print(f"backup failure reported and fixed in {time.monotonic() - started:.1f}s")

    for secret in (cluster_s3.secret_access_key, wrong):
        leaks = [where for where, text in haystacks(redb_env.cluster, redb_env.namespace)
                 if not where.startswith("/proc/") and secret in text]  # the S3 server's env holds it
        leaks += ["operator log"] if secret in redb_env.operator.log() else []
        assert leaks == [], f"an S3 secret is in: {leaks}"
