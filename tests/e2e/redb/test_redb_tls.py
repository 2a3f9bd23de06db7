"""TLS databases declared as REDBs on the local cluster, reached the way an application would: the CA
from the database secret (`ca.crt`), the Service's DNS name checked in the handshake, plaintext
refused, redis-cli --tls, discovery on the TLS sentinels (8002) followed by a TLS connection, mutual
TLS with a client certificate from a Secret, and a failover of the master pod behind the Service that
keeps every WAIT-confirmed write."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel
from tests.e2e.redb.conftest import RedbEnv

from recluster.certificates import Authority
from recluster.local.harness import (
    NODE_SELECTOR,
    apply_redb,
    eventually,
    kubectl,
    labelled_pods,
    redb_manifest,
    secret_data,
    service,
    wait_active,
)

pytestmark = pytest.mark.e2e


def tls_client(host: str, port: int, password: str, ca: Path, **extra: Any) -> redis.Redis:
    # by the Service's IP, which no certificate names: the chain is checked here, the name by
    # `handshake_names` below
    return redis.Redis(host=host, port=port, password=password, socket_timeout=3, socket_connect_timeout=3,
                       ssl=True, ssl_ca_certs=str(ca), ssl_check_hostname=False, ssl_cert_reqs="required",
                       **extra)


def handshake(address: str, port: int, ca: Path, server_name: str) -> None:
    """A TLS handshake with the server at `address` that checks its certificate for `server_name`."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((address, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_name):
        pass


def test_tls_and_mutual_tls_databases_through_their_services(redb_env: RedbEnv, tmp_path: Path) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    client_ca = Authority.create("apps CA", days=2)
    app = client_ca.issue("app", ["app"], days=1, server=False, client=True)
    (tmp_path / "app.pem").write_text(app.certificate)
    (tmp_path / "app-key.pem").write_text(app.key)
    kubectl(cluster, "-n", ns, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "apps-ca"},
        "data": {"cert": base64.b64encode(client_ca.pem().certificate.encode()).decode()}}))

    assert apply_redb(cluster, ns, redb_manifest("tlsdb", replication=True, tlsMode="enabled")) == ""
    assert apply_redb(cluster, ns, redb_manifest("mtlsdb", tlsMode="enabled",
                                                 clientAuthenticationCertificates=["apps-ca"])) == ""
    # a mode recluster does not build is refused at admission, naming the field
    refused = apply_redb(cluster, ns, redb_manifest("replicassl", tlsMode="replica_ssl"))
    assert "spec.tlsMode" in refused and "Replica Of" in refused
    status = wait_active(cluster, ns, "tlsdb")
    uid, port = status["databaseUID"], status["internalEndpoints"][0]["port"]
    wait_active(cluster, ns, "mtlsdb")

    secret = eventually("the secret with password, port and ca.crt",
                        lambda: (lambda d: d if d and d.get("ca.crt") and d.get("port") else None)(
                            secret_data(cluster, ns, "redb-tlsdb")), timeout=60)
    assert "BEGIN CERTIFICATE" in secret["ca.crt"] and "PRIVATE" not in secret["ca.crt"]
    ca = tmp_path / "ca.crt"
    ca.write_text(secret["ca.crt"])
    password = secret["password"]

    svc = eventually("Service tlsdb", lambda: service(cluster, ns, "tlsdb"), timeout=60)
    address = svc["spec"]["clusterIP"]
    master = eventually("the labelled master pod", lambda: labelled_pods(cluster, ns, uid), timeout=60)[0]
    eventually("the Service's endpoint at the master pod", lambda: _serves(address, port, password, ca),
               timeout=60)

    # the certificate names the Service in every form a client in the cluster may use
    for name in ("tlsdb", f"tlsdb.{ns}", f"tlsdb.{ns}.svc", f"tlsdb.{ns}.svc.cluster.local",
                 f"tlsdb-headless.{ns}.svc.cluster.local"):
        handshake(address, port, ca, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(address, port, ca, "somewhere.else")

    writer = tls_client(address, port, password, ca)
    assert writer.set("k", "v") and writer.get("k") == b"v"
    assert writer.execute_command("WAIT", 1, 5000) == 1  # the replica, over TLS, has it
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=address, port=port, password=password, socket_timeout=3).ping()  # plaintext

    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    answer = subprocess.run([cli, "--tls", "--cacert", str(ca), "-h", address, "-p", str(port), "PING"],
                            capture_output=True, text=True, timeout=20, check=False,
                            env={**os.environ, "REDISCLI_AUTH": password})
    assert answer.stdout.strip() == "PONG", answer.stderr

    # discovery on the TLS sentinels of the node pods, then a TLS connection checked by address
    pods = json.loads(kubectl(cluster, "-n", ns, "get", "pods", "-l", NODE_SELECTOR, "-o", "json").stdout)
    sentinels = [(p["status"]["podIP"], 8002) for p in pods["items"] if p["status"].get("podIP")]
    checked = {"ssl": True, "ssl_ca_certs": str(ca), "ssl_check_hostname": True, "ssl_cert_reqs": "required"}
    discovery = Sentinel(sentinels, socket_timeout=3.0, sentinel_kwargs=checked, **checked)
    found = discovery.discover_master("tlsdb")
    assert found == (master["status"]["podIP"], port)
    assert discovery.master_for("tlsdb", password=password, socket_timeout=3.0).ping()

    # mutual TLS: the Service lets in only a client with a certificate the Secret's CA signed
    mtls = service(cluster, ns, "mtlsdb")
    mtls_secret = secret_data(cluster, ns, "redb-mtlsdb")
    mtls_port = int(mtls_secret["port"])
    with pytest.raises(redis.ConnectionError):
        tls_client(mtls["spec"]["clusterIP"], mtls_port, mtls_secret["password"], ca).ping()
    assert eventually("a PING with the client certificate", lambda: tls_client(
        mtls["spec"]["clusterIP"], mtls_port, mtls_secret["password"], ca,
        ssl_certfile=str(tmp_path / "app.pem"), ssl_keyfile=str(tmp_path / "app-key.pem")).ping(), timeout=30)

    # the master pod is deleted: the replica takes over behind the Service (the rigger follows the
    # TLS sentinels), and every write the replica confirmed is there
    confirmed = []
    for i in range(200):
        writer.set(f"c{i}", i)
        if writer.execute_command("WAIT", 1, 2000) == 1:
            confirmed.append(f"c{i}")
    assert len(confirmed) >= 190
    kubectl(cluster, "-n", ns, "delete", "pod", master["metadata"]["name"], "--wait=false")
    deadline = time.monotonic() + 60
    while True:
        try:
            after = tls_client(address, port, password, ca)
            if after.set("after", "1"):
                break
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "no write through the Service 60 s after the master pod went"
        time.sleep(0.2)
    assert after.mget(confirmed) == [key[1:].encode() for key in confirmed], "a WAIT-confirmed write was lost"
    kubectl(cluster, "-n", ns, "delete", "redb", "tlsdb", "mtlsdb", "--wait=false")


def _serves(address: str, port: int, password: str, ca: Path) -> bool:
    try:
        return bool(tls_client(address, port, password, ca).ping())
    except redis.RedisError:
        return False
