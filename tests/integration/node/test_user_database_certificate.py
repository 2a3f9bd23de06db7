"""A user's certificate for the databases on a real loopback cluster (PUT /v1/cluster/update_cert):
refused with a 400 naming the problem (nothing changes), then served by every TLS shard without a
restart, replication (plain TLS and mutual TLS) and Sentinel discovery over TLS keep working with the
user's CA in the cluster's trust lists, a new certificate with a new CA replaces it live, and removing
it goes back to the cluster's own CA. Then that CA rotates (POST /v1/cluster/certificates/rotate):
published first, signing after the overlap, served without a restart."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel
from tests.integration.node.support import der, peer_certificate, write_confirmed
from tests.integration.node.test_database_tls import PASSWORD, tls_args

from recluster.certificates import Authority, Pem, issued_by
from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def until_served(addrs: list[str], port: int, pem: str, timeout_s: float = 30) -> float:
    """Seconds until every address serves `pem` on `port`."""
    start = time.monotonic()
    while True:
        served = [await asyncio.to_thread(peer_certificate, a, port) for a in addrs]
        if all(cert == der(pem) for cert in served):
            return time.monotonic() - start
        assert time.monotonic() - start < timeout_s, f"not served on :{port} after {timeout_s}s"
        await asyncio.sleep(0.2)


def run_id(host: str, port: int, **tls: Any) -> str:
    client = redis.Redis(host=host, port=port, password=PASSWORD, socket_timeout=3, **tls)
    try:
        return str(client.info("server")["run_id"])
    finally:
        client.close()


async def test_a_user_certificate_is_served_replicated_with_and_replaced_live(  # type: ignore[no-untyped-def]
        make_cluster, tmp_path: Path) -> None:
    cluster: LoopbackCluster = await make_cluster(3)
    addrs = [node.addr for node in cluster.nodes]
    clients_ca = Authority.create("clients", days=2)
    app = clients_ca.issue("app", ["app"], days=1, server=False, client=True)
    (tmp_path / "app.pem").write_text(app.certificate)
    (tmp_path / "app-key.pem").write_text(app.key)
    async with cluster.api(0) as api:
        secure = await api.create_bdb({"name": "secure", "memory_size": 64 * 1024 * 1024, "replication": True,
                                       "authentication_redis_pass": PASSWORD, "tls_mode": "enabled"})
        mutual = await api.create_bdb({
            "name": "mutual", "memory_size": 32 * 1024 * 1024, "replication": True,
            "authentication_redis_pass": PASSWORD, "tls_mode": "enabled",
            "authentication_ssl_client_certs": [{"client_cert": clients_ca.pem().certificate}]})
        for bdb in (secure, mutual):
            await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        before = await api.certificates()
        node_addr = {str(n["uid"]): n["addr"] for n in await api.nodes()}
        hosts = {bdb["uid"]: [node_addr[s["node_uid"]] for s in await api.shards(bdb["uid"])]
                 for bdb in (secure, mutual)}

        user_root = Authority.create("user root", days=30)
        leaf = user_root.issue("secure", ["secure", "mutual", *addrs], days=20)
        # refused: the key of another certificate, a chain without its CA; nothing changes
        other_key = user_root.issue("x", days=1).key
        for bad, needle in ((Pem(leaf.certificate, other_key), "the key is not the key"),
                            (leaf, "the chain stops at")):
            with pytest.raises(ClusterApiError) as refused:
                await api.update_cert("proxy", bad.certificate, bad.key)
            assert refused.value.status == 400 and needle in str(refused.value.body), refused.value.body
        with pytest.raises(ClusterApiError) as refused:
            await api.update_cert("syncer", leaf.certificate, leaf.key, user_root.pem().certificate)
        assert refused.value.status == 400
        assert await api.certificates() == before
        await api.update_cert("proxy", leaf.certificate, leaf.key, user_root.pem().certificate)
        published = await api.certificates()
    assert user_root.pem().certificate.strip() in published["proxy_cert"]
    assert before["proxy_cert"].strip() in published["proxy_cert"]  # the sentinels' CA stays
    ca = tmp_path / "ca.pem"
    ca.write_text(published["proxy_cert"])

    took = await until_served(hosts[secure["uid"]], secure["port"], leaf.certificate)
    await until_served(hosts[mutual["uid"]], mutual["port"], leaf.certificate)
    ids = {a: await asyncio.to_thread(run_id, a, secure["port"], **tls_args(ca))
           for a in hosts[secure["uid"]]}
    print(f"user certificate served by every shard after {took:.1f} s")

    # discovery over TLS, then the master verified by its address against the published CA; WAIT 1
    # proves the replica links (TLS, verified against the user's CA) are up
    sentinel = Sentinel(cluster.sentinels_tls(), socket_timeout=2.0, sentinel_kwargs=tls_args(ca),
                        password=PASSWORD, **tls_args(ca))
    master = sentinel.master_for("secure", socket_timeout=3)
    assert len(await write_confirmed(master, 20)) == 20
    app_tls = tls_args(ca, tmp_path / "app.pem", tmp_path / "app-key.pem")
    mutual_master = sentinel.master_for("mutual", socket_timeout=3, **{k: v for k, v in app_tls.items()
                                                                         if k.startswith("ssl_")})
    assert len(await write_confirmed(mutual_master, 20)) == 20

    # a new certificate from a new CA, rolled out without a restart
    root2 = Authority.create("user root 2", days=30)
    leaf2 = root2.issue("secure", ["secure", "mutual", *addrs], days=20)
    async with cluster.api(1) as api:  # a follower forwards it
        await api.update_cert("proxy", leaf2.certificate + root2.pem().certificate, leaf2.key)
        ca.write_text((await api.certificates())["proxy_cert"])
    took = await until_served(hosts[secure["uid"]], secure["port"], leaf2.certificate)
    print(f"new user certificate served by every shard after {took:.1f} s")
    assert {a: await asyncio.to_thread(run_id, a, secure["port"], **tls_args(ca)) for a in ids} == ids
    assert len(await write_confirmed(master, 20)) == 20
    assert len(await write_confirmed(mutual_master, 20)) == 20

    # removed: the shards serve their node-issued certificates again, verified by the cluster's CA
    async with cluster.api(0) as api:
        await api.delete_cert("proxy")
        assert (await api.certificates())["proxy_cert"] == before["proxy_cert"]
    ca.write_text(before["proxy_cert"])
    deadline = time.monotonic() + 30
    while await asyncio.to_thread(peer_certificate, hosts[secure["uid"]][0], secure["port"]) \
            == der(leaf2.certificate):
        assert time.monotonic() < deadline, "the user's certificate is still served after its removal"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    assert len(await write_confirmed(master, 20)) == 20

    # the cluster's own CA rotates: the next one is published at once, signs 2 s later; the shards
    # then serve certificates of the new CA without a restart, replication and discovery go on
    async with cluster.api(0) as api:
        rotating = await api.request("POST", "/v1/cluster/certificates/rotate", {"overlap_seconds": 2})
        with pytest.raises(ClusterApiError) as busy:
            await api.request("POST", "/v1/cluster/certificates/rotate")
        assert busy.value.status == 409
    assert rotating["proxy_cert"].count("BEGIN CERTIFICATE") == 2
    new_ca = rotating["proxy_cert"].replace(before["proxy_cert"].strip(), "").strip() + "\n"
    ca.write_text(rotating["proxy_cert"])
    start = time.monotonic()
    while not all(issued_by(pem_of(peer_certificate(a, secure["port"])), new_ca)
                  for a in hosts[secure["uid"]]):
        assert time.monotonic() - start < 30, "the shards do not serve certificates of the new CA"
        await asyncio.sleep(0.2)
    print(f"certificates of the rotated CA served {time.monotonic() - start:.1f} s after the rotation call")
    assert {a: await asyncio.to_thread(run_id, a, secure["port"], **tls_args(ca)) for a in ids} == ids
    for a in hosts[secure["uid"]]:  # verified by address against the new CA alone
        only_new = tmp_path / "new-ca.pem"
        only_new.write_text(new_ca)
        assert await asyncio.to_thread(run_id, a, secure["port"], **tls_args(only_new))
    sentinel = Sentinel(cluster.sentinels_tls(), socket_timeout=2.0, sentinel_kwargs=tls_args(ca),
                        password=PASSWORD, **tls_args(ca))
    rotated = sentinel.master_for("secure", socket_timeout=3)
    assert len(await write_confirmed(rotated, 20)) == 20
    for client in (master, mutual_master, rotated):
        client.connection_pool.disconnect()


def pem_of(der_bytes: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der_bytes)
