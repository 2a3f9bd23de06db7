"""A read of an unchanged cluster state costs a short GET, not the whole document: the store keeps a
digest beside the state, written by the same script, and a reader compares it with the last document
it parsed (every REST read at 100 databases fetched 90 KiB before this)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from recluster.local.harness import free_port
from recluster.node.ccs import DIGEST_KEY, STATE_KEY, CcsStore
from recluster.node.config import NodeConfig
from recluster.node.records import ClusterRecord, ClusterState

pytestmark = pytest.mark.integration

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PASSWORD = "ccs-reads-secret"


@pytest.fixture
def ccs(tmp_path: Path) -> Iterator[int]:
    if not Path(REDIS_SERVER).exists():  # pragma: no cover
        pytest.skip("redis-server is not installed")
    port = free_port()
    conf = tmp_path / "ccs.conf"  # the password in a file, not in argv
    conf.write_text(f"port {port}\nbind 127.0.0.1\nrequirepass {PASSWORD}\nsave \"\"\nappendonly no\n"
                    f"dir {tmp_path}\n")
    proc = subprocess.Popen([REDIS_SERVER, str(conf)], stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield port
    client.close()
    proc.terminate()
    proc.wait(timeout=10)


def sent_bytes(client: redis.Redis) -> int:
    return int(client.info("stats")["total_net_output_bytes"])


async def test_an_unchanged_state_is_not_fetched_again_and_a_change_is(ccs: int, tmp_path: Path) -> None:
    cfg = NodeConfig(addr="127.0.0.1", data_dir=tmp_path, ccs_port=ccs)
    writer, reader = CcsStore(cfg, PASSWORD), CcsStore(cfg, PASSWORD)
    probe = redis.Redis(host="127.0.0.1", port=ccs, password=PASSWORD)
    try:
        # a document the size of a busy cluster's
        await writer.initialize(ClusterState(cluster=ClusterRecord(
            name="c" * 60_000, created_time="", username="u", password_hash="h")))
        first = await reader.read_local()
        assert first is not None and first.version == 1

        before = sent_bytes(probe)
        again = await reader.read_local()
        cost = sent_bytes(probe) - before
        assert again is first  # the same parsed state
        # (the count includes the INFO reply that measures it, about 1.4 KiB)
        assert cost < 5_000, f"a read at rest sent {cost} bytes: the 60 KB document was fetched again"

        await writer.write(lambda state: setattr(state.cluster, "name", "renamed"), "rename")
        changed = await reader.read_local()
        assert changed is not None and changed.version == 2 and changed.cluster.name == "renamed"

        # a store written before digests existed (an older node) is read in full
        old = ClusterState(cluster=ClusterRecord(name="old", created_time="", username="u",
                                                 password_hash="h"))
        old.version = 9
        probe.delete(DIGEST_KEY)
        probe.set(STATE_KEY, old.model_dump_json())
        legacy = await reader.read_local()
        assert legacy is not None and legacy.version == 9 and legacy.cluster.name == "old"
    finally:
        probe.close()
        await writer.close()
        await reader.close()
