"""schemathesis against the node's REST API, from its own OpenAPI document (/v1/openapi.json), on a
real 3-node loopback cluster: for every operation, generated requests (valid and schema-violating,
seeded and derandomized) never get a 5xx, get only documented status codes, and get bodies that match
the documented schema; authenticated operations refuse a request without or with wrong credentials.

Requests go to a node that is not the leader, so writes also take the forwarding path.

Left out: `POST /v1/nodes/{uid}/actions/remove`. Node uids are 1-3, so generated uids hit real nodes,
and a removal decommissions the node for good (its shards move, it leaves the cluster); its refusals
(unknown and malformed uids) are covered by tests/integration/node/test_api_errors.py.
Databases created from generated bodies are deleted at the end, and the cluster must still be whole:
every node active, one leader, ready.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from recluster.clients.cluster_api import ClusterApiError
from recluster.node.app import create_app
from recluster.node.devcluster import LoopbackCluster, random_loopback_base

pytestmark = pytest.mark.integration

if not shutil.which("redis-server"):  # pragma: no cover - a machine without Redis cannot run these
    pytest.skip("redis-server is not installed", allow_module_level=True)

TARGET = 1  # a follower: writes are forwarded to the leader (node 0 after create_cluster)
MAX_EXAMPLES = 30  # fuzzing examples per operation and generation mode; the whole file stays ~2-3 min
SEED = 20111  # with derandomize, the same requests on every run
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, ignored_auth]

# schemathesis builds one test per operation when the module is collected, so the document, the
# cluster's addresses and its password are fixed here; test_the_served_document_is_this_one checks the
# node serves the same document. (schemathesis.pytest.from_fixture, which would load it from the
# running node, fails under pytest 9: it sets Function._nodeid, which pytest 9 no longer has.)
BASE = random_loopback_base()
PASSWORD = secrets.token_hex(12)
DOCUMENT = create_app(cast(Any, None)).openapi()
NODE_URL = f"https://{BASE}{LoopbackCluster.first_host + TARGET}:{LoopbackCluster.api_port}"

schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))
schema.config.update(base_url=NODE_URL, basic_auth=(LoopbackCluster.username, PASSWORD), tls_verify=False,
                     request_timeout=30)
schema.config.seed = SEED
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True,
                                modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LoopbackCluster]:
    # replicas of a node are never moved during this file (no node is stopped)
    cluster = LoopbackCluster(3, tmp_path_factory.mktemp("schemathesis"), base=BASE, password=PASSWORD,
                              replica_move_grace_s=600.0, down_after_ms=5000)
    try:
        await cluster.start(timeout_s=180)
        await cluster.wait_ready(timeout_s=120)
        yield cluster
    finally:
        cluster.stop()
        assert cluster.leftover_pids() == [], "processes left behind after teardown"


async def test_the_served_document_is_this_one(cluster: LoopbackCluster) -> None:
    assert cluster.url(TARGET) == NODE_URL
    async with httpx.AsyncClient(verify=False) as client:  # noqa: S501
        served = (await client.get(f"{NODE_URL}/v1/openapi.json")).json()
    assert served == DOCUMENT


SESSION = requests.Session()  # one kept-alive TLS connection, not a handshake per request
SESSION.verify = False
SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status) -> requests, printed at the end


@schema.exclude(method="POST", path="/v1/nodes/{uid}/actions/remove").parametrize()
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_generated_requests(case: Any, cluster: LoopbackCluster) -> None:
    started = time.monotonic()
    response = case.call_and_validate(session=SESSION, checks=CHECKS)
    SEEN[(f"{case.method} {case.path}", response.status_code)] += 1
    TIMES[f"{case.method} {case.path}"] += time.monotonic() - started


TIMES: Counter[str] = Counter()  # operation -> seconds spent


async def test_the_cluster_is_whole_afterwards(cluster: LoopbackCluster) -> None:
    """Runs after the generated requests (file order). Every database a generated body created
    becomes active (valid input converges), then is deleted; the cluster still answers with every
    node active, one leader, every node ready, and no daemon restarted."""
    for (operation, status), count in sorted(SEEN.items()):
        print(f"{operation}: {status} x{count}")
    print(f"{sum(SEEN.values())} generated requests in {sum(TIMES.values()):.0f} s")
    for operation, seconds in TIMES.most_common(8):
        print(f"  {operation}: {seconds:.1f} s")
    async with cluster.api(0) as api:
        created = await api.bdbs()
        if any(op == "POST /v1/bdbs" for op, _ in SEEN):
            assert SEEN[("POST /v1/bdbs", 200)] > 0, "no generated body created a database"
        stuck = {}
        for bdb in created:
            try:
                await api.wait_bdb_status(bdb["uid"], "active", timeout_s=60)
            except (TimeoutError, RuntimeError, ClusterApiError):  # RuntimeError: creation-failed
                stuck[bdb["uid"]] = {k: bdb.get(k) for k in ("name", "port", "memory_size", "replication",
                                                            "data_persistence", "snapshot_policy")}
        deadline = time.monotonic() + 180
        while True:
            bdbs = await api.bdbs()
            if not bdbs:
                break
            for bdb in bdbs:
                if bdb["status"] in ("active", "creation-failed"):
                    try:
                        await api.delete_bdb(bdb["uid"])
                    except ClusterApiError as exc:  # busy: asked again on the next round
                        print(f"delete of {bdb['uid']} ({bdb['status']}) refused: {exc}")
            assert time.monotonic() < deadline, f"databases left: {[(b['uid'], b['status']) for b in bdbs]}"
            await asyncio.sleep(1)
        assert not stuck, f"databases created from valid bodies that never became active: {stuck}"
        print(f"{len(created)} databases created by generated bodies, all active, all deleted")
        nodes = await api.nodes()
        assert [n["status"] for n in nodes] == ["active"] * 3, nodes
        assert sum(n["role"] == "master" for n in nodes) == 1, nodes
        assert (await api.cluster())["nodes_count"] == 3
    await cluster.wait_ready(timeout_s=60)
    for node in cluster.nodes:
        assert node.process is not None and node.process.poll() is None, f"node {node.index} exited"
