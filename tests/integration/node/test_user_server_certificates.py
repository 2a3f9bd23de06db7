"""A user's certificate for the nodes' own HTTPS servers on a real loopback cluster (PUT
/v1/cluster/update_cert, names `api` 9443, `cm` 8443, `metrics_exporter` 8070): refused with a 400
naming the problem (nothing changes, the node's own still served), then served by every node to new
connections, verified by a real HTTPS client against the user's CA by the node's address; replaced
live by one of a new CA (same daemon process); removed, back to the node's own."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import httpx
import pytest
from tests.integration.node.support import der, peer_certificate
from tests.integration.node.test_user_database_certificate import until_served

from recluster.api.ports import API_PORT, CONSOLE_PORT, METRICS_PORT
from recluster.certificates import Authority, Pem
from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

SERVERS = {"api": API_PORT, "cm": CONSOLE_PORT, "metrics_exporter": METRICS_PORT}


async def verified_get(url: str, ca: Path, auth: tuple[str, str] | None = None) -> int:
    """The status of GET `url`, the server checked against `ca` alone for the URL's host."""
    context = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(verify=context, timeout=10.0, auth=auth) as client:
        return (await client.get(url)).status_code


async def test_user_certificates_of_the_https_servers_are_served_replaced_live_and_removed(  # type: ignore[no-untyped-def]
        make_cluster, tmp_path: Path) -> None:
    cluster: LoopbackCluster = await make_cluster(2)
    addrs = [node.addr for node in cluster.nodes]
    pids = [node.process.pid for node in cluster.nodes if node.process]
    own = {(a, port): await asyncio.to_thread(peer_certificate, a, port)
           for a in addrs for port in SERVERS.values()}
    admin = (cluster.username, cluster.password)
    first_ca = Authority.create("user root", days=30)
    first = first_ca.issue("recluster api", addrs, days=20)
    async with cluster.api(0) as api:
        before = await api.certificates()
        assert all(before[f"{name}_cert"] == "" for name in SERVERS)
        other_key = first_ca.issue("x", days=1).key
        for name, bad, needle in (("api", Pem(first.certificate, other_key), "the key is not the key"),
                                  ("cm", first, "the chain stops at"),
                                  ("metrics_exporter", Pem(first.certificate, "not a key"),
                                   "the key cannot be read")):
            with pytest.raises(ClusterApiError) as refused:
                await api.update_cert(name, bad.certificate, bad.key)
            assert refused.value.status == 400, refused.value.body
            assert needle in str(refused.value.body) and name in str(refused.value.body), refused.value.body
            assert "PRIVATE KEY" not in str(refused.value.body)
        assert await api.certificates() == before
        await asyncio.sleep(1.0)  # a node loop pass or two: still its own
        for (a, port), served in own.items():
            assert await asyncio.to_thread(peer_certificate, a, port) == served, (a, port)

        start = time.monotonic()
        for name in SERVERS:
            await api.update_cert(name, first.certificate, first.key, first_ca.pem().certificate)
        published = await api.certificates()
        assert all(der(published[f"{name}_cert"]) == der(first.certificate) for name in SERVERS)
        for port in SERVERS.values():
            await until_served(addrs, port, first.certificate)
        took = time.monotonic() - start
        print(f"user certificates served on {len(addrs)} nodes x {len(SERVERS)} servers "
              f"{took:.1f} s after update_cert")

    ca = tmp_path / "first-ca.pem"
    ca.write_text(first_ca.pem().certificate)
    for a in addrs:  # a real HTTPS client, trusting only the user's CA, checking the name
        assert await verified_get(f"https://{a}:{API_PORT}/v1/cluster", ca, admin) == 200
        assert await verified_get(f"https://{a}:{METRICS_PORT}/metrics", ca) == 200
        assert await verified_get(f"https://{a}:{CONSOLE_PORT}/", ca) < 500

    # replaced live by a certificate of another CA
    second_ca = Authority.create("user root 2", days=30)
    second = second_ca.issue("recluster api", addrs, days=20)
    async with cluster.api(1) as api:
        start = time.monotonic()
        await api.update_cert("api", second.certificate + second_ca.pem().certificate, second.key)
        took = await until_served(addrs, API_PORT, second.certificate)
        print(f"replacing certificate served {time.monotonic() - start:.1f} s after update_cert "
              f"({took:.1f} s polling)")
    ca2 = tmp_path / "second-ca.pem"
    ca2.write_text(second_ca.pem().certificate)
    for a in addrs:
        assert await verified_get(f"https://{a}:{API_PORT}/v1/cluster", ca2, admin) == 200
        with pytest.raises(httpx.ConnectError):  # the replaced CA no longer verifies it
            await verified_get(f"https://{a}:{API_PORT}/v1/cluster", ca)
        assert await verified_get(f"https://{a}:{METRICS_PORT}/metrics", ca) == 200  # the others kept theirs
    assert [node.process.pid for node in cluster.nodes if node.process] == pids
    assert all(node.process and node.process.poll() is None for node in cluster.nodes)

    # removed: every server back to its node's own certificate
    async with cluster.api(0) as api:
        for name in SERVERS:
            await api.delete_cert(name)
        removed = await api.certificates()
        assert all(removed[f"{name}_cert"] == "" for name in SERVERS)
    deadline = time.monotonic() + 30
    while True:
        served = {key: await asyncio.to_thread(peer_certificate, *key) for key in own}
        if served == own:
            break
        assert time.monotonic() < deadline, "the nodes do not serve their own certificates again"
        await asyncio.sleep(0.2)
