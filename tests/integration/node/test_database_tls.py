"""TLS databases on a real loopback cluster, with real clients: the port speaks TLS only, the shards
replicate over TLS, the server is verified against the CA the REST API publishes, Sentinel discovery
works over TLS (the TLS sentinel, 8002) followed by a TLS connection, a crashed master's node fails
over without losing a WAIT-confirmed write, and mutual TLS lets in only the clients listed."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.sentinel import Sentinel
from tests.integration.node.support import write_confirmed
from tests.integration.node.test_failover import node_index, write_until_failover

from recluster.certificates import Authority
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

PASSWORD = "tls-db-secret"


def tls_args(ca: Path, cert: Path | None = None, key: Path | None = None) -> dict[str, Any]:
    """redis-py arguments verifying the server against `ca` by the address connected to."""
    args: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(ca), "ssl_check_hostname": True,
                            "ssl_cert_reqs": "required"}
    if cert is not None:
        args |= {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    return args


def ping(host: str, port: int, **kwargs: Any) -> bool:
    client = redis.Redis(host=host, port=port, password=PASSWORD, socket_timeout=2, socket_connect_timeout=2,
                         **kwargs)
    try:
        return bool(client.ping())
    finally:
        client.close()


async def test_tls_database_end_to_end_with_failover_and_client_certificates(  # type: ignore[no-untyped-def]
        make_cluster, tmp_path: Path) -> None:
    cluster: LoopbackCluster = await make_cluster(3)
    # a client CA and one of its clients; a stranger signed by another CA
    client_ca = Authority.create("test clients CA", days=2)
    client = client_ca.issue("app", ["app"], days=1, server=False, client=True)
    stranger = Authority.create("other CA", days=2).issue("x", ["x"], days=1, server=False, client=True)
    files = {}
    for name, text in {"client.pem": client.certificate, "client-key.pem": client.key,
                       "stranger.pem": stranger.certificate, "stranger-key.pem": stranger.key}.items():
        files[name] = tmp_path / name
        files[name].write_text(text)

    async with cluster.api(0) as api:
        secure = await api.create_bdb({"name": "secure", "memory_size": 64 * 1024 * 1024, "replication": True,
                                       "authentication_redis_pass": PASSWORD, "tls_mode": "enabled"})
        listed = [{"client_cert": client_ca.pem().certificate}]
        mutual = await api.create_bdb({
            "name": "mutual", "memory_size": 32 * 1024 * 1024, "authentication_redis_pass": PASSWORD,
            "tls_mode": "enabled", "authentication_ssl_client_certs": listed})
        plain = await api.create_bdb({"name": "plain", "memory_size": 32 * 1024 * 1024,
                                      "authentication_redis_pass": PASSWORD})
        for bdb in (secure, mutual, plain):
            await api.wait_bdb_status(bdb["uid"], timeout_s=120)
        ca_pem = (await api.certificates())["proxy_cert"]
        view = await api.bdb(secure["uid"])
    assert "BEGIN CERTIFICATE" in ca_pem and "PRIVATE" not in ca_pem
    assert view["tls_mode"] == "enabled"
    ca = tmp_path / "ca.pem"
    ca.write_text(ca_pem)

    # discovery over TLS on the TLS sentinels; the plaintext ones know nothing of the TLS database
    sentinel = Sentinel(cluster.sentinels_tls(), socket_timeout=2.0, sentinel_kwargs=tls_args(ca),
                        **tls_args(ca))
    master_host, master_port = await asyncio.to_thread(sentinel.discover_master, "secure")
    assert master_port == secure["port"]
    plain_sentinel = redis.Redis(*cluster.sentinels()[0], socket_timeout=2)
    assert "secure" not in await asyncio.to_thread(plain_sentinel.sentinel_masters)
    assert "plain" in await asyncio.to_thread(plain_sentinel.sentinel_masters)
    plain_sentinel.close()

    # TLS only: verified by the address against the published CA; plaintext refused
    assert await asyncio.to_thread(ping, master_host, master_port, **tls_args(ca))
    with pytest.raises(redis.ConnectionError):
        await asyncio.to_thread(ping, master_host, master_port)
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(Authority.create("not the cluster", days=1).pem().certificate)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        await asyncio.to_thread(ping, master_host, master_port, **tls_args(other_ca))

    # the served certificate's remaining life is a metric (a year, renewed 30 days before)
    node = next(n for n in cluster.nodes if n.addr == master_host)
    own_cert = ssl.create_default_context(cafile=str(node.data_dir / "tls" / "cert.pem"))
    async with httpx.AsyncClient(verify=own_cert) as http:
        text = (await http.get(f"https://{master_host}:{cluster.metrics_port}/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith("recluster_shard_cert_expiration_seconds{")
             and f'bdb="{secure["uid"]}"' in line and 'role="master"' in line]
    assert len(lines) == 1, "no certificate expiry metric for the TLS database's master"
    assert 364 * 86400 < float(lines[0].rsplit(" ", 1)[1]) <= 365 * 86400

    # redis-cli --tls, as a user would (the password from the environment, not argv)
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    answer = await asyncio.to_thread(
        subprocess.run,
        [cli, "--tls", "--cacert", str(ca), "-h", master_host, "-p", str(master_port), "PING"],
        capture_output=True, text=True, timeout=10, env={**os.environ, "REDISCLI_AUTH": PASSWORD})
    assert answer.stdout.strip() == "PONG", answer.stderr

    # mutual TLS: only a client presenting a certificate the database lists (here: signed by that CA)
    mutual_host = (await asyncio.to_thread(sentinel.discover_master, "mutual"))[0]
    assert await asyncio.to_thread(ping, mutual_host, mutual["port"],
                                   **tls_args(ca, files["client.pem"], files["client-key.pem"]))
    for args in (tls_args(ca), tls_args(ca, files["stranger.pem"], files["stranger-key.pem"])):
        with pytest.raises(redis.ConnectionError):
            await asyncio.to_thread(ping, mutual_host, mutual["port"], **args)

    # the list changes on the live database: the shard loads the new trust list without a restart
    # (same run_id), the old client is refused from then on and the new one let in
    second_ca = Authority.create("second clients CA", days=2)
    second = second_ca.issue("app2", ["app2"], days=1, server=False, client=True)
    files["second.pem"], files["second-key.pem"] = tmp_path / "second.pem", tmp_path / "second-key.pem"
    files["second.pem"].write_text(second.certificate)
    files["second-key.pem"].write_text(second.key)
    first = tls_args(ca, files["client.pem"], files["client-key.pem"])
    run_id = await asyncio.to_thread(lambda: redis.Redis(
        host=mutual_host, port=mutual["port"], password=PASSWORD, **first).info("server")["run_id"])
    async with cluster.api(0) as api:
        await api.update_bdb(mutual["uid"], {
            "authentication_ssl_client_certs": [{"client_cert": second_ca.pem().certificate}]})
        await api.wait_bdb_status(mutual["uid"], timeout_s=60)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            assert await asyncio.to_thread(ping, mutual_host, mutual["port"],
                                           **tls_args(ca, files["second.pem"], files["second-key.pem"]))
            break
        except redis.ConnectionError:
            assert asyncio.get_running_loop().time() < deadline, "the new client certificate was not let in"
            await asyncio.sleep(0.5)
    with pytest.raises(redis.ConnectionError):
        await asyncio.to_thread(ping, mutual_host, mutual["port"], **first)
    now_id = await asyncio.to_thread(lambda: redis.Redis(
        host=mutual_host, port=mutual["port"], password=PASSWORD,
        **tls_args(ca, files["second.pem"], files["second-key.pem"])).info("server")["run_id"])
    assert now_id == run_id, "the shard was restarted to load its trust list"

    # addresses outside the cluster (the rigger's LoadBalancer Services): every shard's certificate
    # names them within seconds, a client verifying by that name gets in, the database stays active
    replica_host = (await asyncio.to_thread(sentinel.discover_slaves, "secure"))[0][0]
    outside = "secure.outside.test"
    assert not await asyncio.to_thread(_names, master_host, master_port, ca, outside)
    async with cluster.api(0) as api:
        told = await api.update_bdb(secure["uid"], {"external_addr": [outside, "198.18.250.7"]})
        assert told["status"] == "active" and told["external_addr"] == [outside, "198.18.250.7"]
        assert [e["addr_type"] for e in told["endpoints"]] == ["internal", "external"]
    deadline = asyncio.get_running_loop().time() + 30
    for host in (master_host, replica_host):
        while not await asyncio.to_thread(_names, host, master_port, ca, outside):
            assert asyncio.get_running_loop().time() < deadline, f"{host} does not prove {outside}"
            await asyncio.sleep(0.5)

    # the replica replicates over TLS (the only listener the master has) and takes WAIT-confirmed
    # writes; the master's node crashes and the replica takes over, found over TLS discovery
    writer = sentinel.master_for("secure", password=PASSWORD, socket_timeout=1.0, **tls_args(ca))
    confirmed = await write_confirmed(writer, 100)
    cluster.kill_node(node_index(cluster, master_host))
    await write_until_failover(writer, "after-failover", 90)
    new_host, _ = await asyncio.to_thread(sentinel.discover_master, "secure")
    assert new_host != master_host
    values = await asyncio.to_thread(writer.mget, confirmed)
    assert values == [k.encode() for k in confirmed], "a write confirmed by WAIT was lost"
    writer.close()
    # the new master too speaks TLS only, and its certificate carries its node's address
    with pytest.raises(redis.ConnectionError):
        await asyncio.to_thread(ping, new_host, master_port)
    assert await asyncio.to_thread(ping, new_host, master_port, **tls_args(ca))


def _names(host: str, port: int, ca: Path, name: str) -> bool:
    """Whether the TLS server at host:port proves `name` with a certificate of `ca` (a client that
    reached it through an address outside the cluster checks exactly this)."""
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection((host, port), timeout=3) as raw, \
                context.wrap_socket(raw, server_hostname=name):
            return True
    except ssl.SSLCertVerificationError:
        return False
