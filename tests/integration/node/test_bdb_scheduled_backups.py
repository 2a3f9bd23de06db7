"""Scheduled backups (the bdb's `backup`, `backup_interval`, `backup_location`) on a loopback cluster
of real node daemons and the real S3 server: a backup at creation and then every interval (the nodes'
test knob makes the interval seconds), a wrong key fails with the reason in the bdb and is retried,
fixing it succeeds, the schedule carries on after the leader is killed, and the S3 secret is in no
answer and no file the nodes wrote (the state holds it sealed)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.node.test_bdb_backups import files_holding, location
from tests.integration.node.test_resilience import leader_index

from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.s3 import S3Credentials, S3Location, S3Store
from recluster.local.s3server import S3Endpoint
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration
INTERVAL_S = 4.0


async def until(what: str, check: Callable[[], Awaitable[dict[str, Any] | None]],
                timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = await check()
        except Exception:
            found = None
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def backup_samples(cluster: LoopbackCluster, index: int, uid: int) -> dict[str, float]:
    """The scheduled-backup samples of bdb `uid` on node `index`'s metrics endpoint (HTTPS with the
    node's own certificate, its own trust anchor here)."""
    node = cluster.nodes[index]
    own_cert = ssl.create_default_context(cafile=str(node.data_dir / "tls" / "cert.pem"))
    async with httpx.AsyncClient(verify=own_cert) as client:
        text = (await client.get(f"https://{node.addr}:{cluster.metrics_port}/metrics")).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("recluster_cluster_bdb_backup_") and s.labels.get("bdb") == str(uid)}


def manifests(endpoint: S3Endpoint, subdir: str) -> list[str]:
    credentials = S3Credentials(endpoint.access_key_id, endpoint.secret_access_key)
    with S3Store(S3Location(endpoint.bucket, credentials, subdir, endpoint.url)) as bucket:
        return sorted(n for n in bucket.list_names() if n.endswith("manifest.json"))


async def test_scheduled_backups_run_fail_retry_and_survive_a_leader_change(
        make_cluster: Callable[..., Awaitable[LoopbackCluster]], s3_server: S3Endpoint) -> None:
    cluster = await make_cluster(3, test_backup_interval_s=INTERVAL_S)
    wrong = "wrong-secret-key-of-the-test"
    async with cluster.api(0) as api:
        started = time.monotonic()
        bdb = await api.create_bdb({"name": "scheduled", "memory_size": 64 << 20, "replication": True,
                                    "authentication_redis_pass": "pw", "backup": True,
                                    "backup_interval": 3600,
                                    "backup_location": location(s3_server, subdir="scheduled")})
        uid = bdb["uid"]
        assert "backup_location" not in bdb and s3_server.secret_access_key not in str(bdb)
        # bad input is a 400 naming the field, and changes nothing
        with pytest.raises(ClusterApiError) as refused:
            await api.create_bdb({"name": "no-location", "memory_size": 64 << 20, "backup": True})
        assert refused.value.status == 400 and refused.value.body["field"] == "backup_location"
        for body, field in (({"backup_location": location(s3_server, type="gs")}, "backup_location.type"),
                            ({"backup_interval": 60}, "backup_interval")):
            with pytest.raises(ClusterApiError) as refused:
                await api.update_bdb(uid, body)
            assert refused.value.status == 400 and field in str(refused.value.body), refused.value.body
            assert s3_server.secret_access_key not in str(refused.value.body)

        async def succeeded_after(previous: str | None) -> dict[str, Any] | None:
            now = await api.bdb(uid)
            done = now["backup_status"] == "succeeded" and now["last_backup_time"] not in (None, previous)
            return now if done else None

        first = await until("the backup at creation", lambda: succeeded_after(None))
        print(f"backup at creation after {time.monotonic() - started:.1f}s")
        assert first["backup"] is True and first["backup_interval"] == 3600 and first["backup_failures"] == 0
        second = await until("the next scheduled backup", lambda: succeeded_after(first["last_backup_time"]))
        assert len(manifests(s3_server, "scheduled")) >= 2, "each backup is a manifest of its own"

        # a wrong key: failed, the reason in the bdb, and retried (the failures count up)
        await api.update_bdb(uid, {"backup_location": location(s3_server, subdir="scheduled",
                                                               secret_access_key=wrong)})
        assert (await api.bdb(uid))["status"] == "active"  # a backup change leaves the shards alone

        async def failing(times: int) -> dict[str, Any] | None:
            now = await api.bdb(uid)
            return now if now["backup_status"] == "failed" and now["backup_failures"] >= times else None

        failed = await until("a failed backup retried", lambda: failing(2))
        assert failed["backup_failure_reason"] == "no-permission", failed
        assert "refused" in failed["backup_failure_message"] and wrong not in str(failed)
        assert failed["last_backup_time"] == second["last_backup_time"]
        # and the metrics say so (any node reports them, from the state)
        samples = await backup_samples(cluster, 1, uid)
        assert samples["recluster_cluster_bdb_backup_failures"] >= 2, samples
        assert samples["recluster_cluster_bdb_backup_failures_total"] >= 2, samples
        assert samples["recluster_cluster_bdb_backup_last_success_timestamp_seconds"] == \
            datetime.fromisoformat(second["last_backup_time"]).timestamp(), samples

        # fixed: the next retry succeeds and the failures are forgotten
        await api.update_bdb(uid, {"backup_location": location(s3_server, subdir="scheduled")})
        fixed = await until("a backup after the fix", lambda: succeeded_after(second["last_backup_time"]))
        assert fixed["backup_failures"] == 0 and fixed["backup_failure_reason"] is None

    # the leader is killed: another node runs the schedule from the state
    victim = await leader_index(cluster, 0)
    cluster.kill_node(victim)
    killed = datetime.now(UTC).replace(microsecond=0)
    ask = (victim + 1) % 3

    async def after_the_kill() -> dict[str, Any] | None:
        now = await api.bdb(uid)
        done = now["backup_status"] == "succeeded" and now["last_backup_time"] is not None
        return now if done and datetime.fromisoformat(now["last_backup_time"]) > killed else None

    async with cluster.api(ask) as api:
        after = await until("a backup run by the new leader", after_the_kill, timeout_s=120)
        print(f"first backup by the new leader {datetime.now(UTC) - killed} after the kill")
        assert after["backup_failures"] == 0
    cluster.start_node(victim)
    await cluster.wait_ready([victim], timeout_s=120)
    async with cluster.api(ask) as api:
        await api.update_bdb(uid, {"backup": False})
        off = await api.bdb(uid)
        assert off["backup"] is False and off["next_backup_time"] is None
    for secret in (s3_server.secret_access_key, wrong):
        leaked = await asyncio.to_thread(files_holding, Path(cluster.root), secret.encode())
        assert leaked == [], f"an S3 secret is in files the nodes wrote (logs, state): {leaked}"
