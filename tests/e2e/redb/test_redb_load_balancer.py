"""A TLS database behind a LoadBalancer Service, reached from outside the cluster as an application
there would: by the address Kubernetes gave the Service, verified against the published CA. The
services rigger tells the cluster that address and the shards' node-issued certificates name it."""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import pytest
import redis
from tests.e2e.operator.test_operator_lifecycle import cluster_api
from tests.e2e.redb.conftest import RedbEnv

from recluster.local.harness import (
    apply_redb,
    eventually,
    kubectl,
    redb_manifest,
    secret_data,
    service,
    wait_active,
)

pytestmark = pytest.mark.e2e

WITH_LOAD_BALANCER = "cluster_ip,headless,load_balancer"


def _proves(address: str, port: int, ca: Path) -> bool:
    """Whether the TLS server at `address` proves that address with a certificate of `ca`."""
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection((address, port), timeout=3) as raw, \
                context.wrap_socket(raw, server_hostname=address):
            return True
    except (ssl.SSLCertVerificationError, OSError):
        return False


def _rigger_types(redb_env: RedbEnv, value: str | None) -> None:
    patch = {"spec": {"servicesRiggerSpec": {"databaseServiceType": value}}}
    kubectl(redb_env.cluster, "-n", redb_env.namespace, "patch", "rec", "rec", "--type=merge",
            "-p", json.dumps(patch))


def test_a_tls_database_is_verified_by_its_load_balancer_address(redb_env: RedbEnv, tmp_path: Path) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    _rigger_types(redb_env, WITH_LOAD_BALANCER)
    try:
        assert apply_redb(cluster, ns, redb_manifest("lbdb", replication=True, tlsMode="enabled")) == ""
        uid = int(wait_active(cluster, ns, "lbdb")["databaseUID"])
        secret = eventually("the secret with password, port and ca.crt",
                            lambda: (lambda d: d if d and d.get("ca.crt") and d.get("port") else None)(
                                secret_data(cluster, ns, "redb-lbdb")), timeout=60)
        ca = tmp_path / "ca.crt"
        ca.write_text(secret["ca.crt"])
        port = int(secret["port"])

        def load_balancer_address() -> str | None:
            svc = service(cluster, ns, "lbdb-load-balancer")
            ingress = ((svc or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []
            return str(ingress[0]["ip"]) if ingress and ingress[0].get("ip") else None

        address = eventually("the LoadBalancer Service's address (after the rigger's restart)",
                             load_balancer_address, timeout=180)
        seen = time.monotonic()
        eventually(f"the database's certificate to name {address}", lambda: _proves(address, port, ca),
                   timeout=60)
        print(f"the certificate names the LoadBalancer address {address} "
              f"{time.monotonic() - seen:.1f} s after the Service had it")
        client = redis.Redis(host=address, port=port, password=secret["password"], socket_timeout=5, ssl=True,
                             ssl_ca_certs=str(ca), ssl_check_hostname=True, ssl_cert_reqs="required")
        assert client.set("from-outside", "1") and client.execute_command("WAIT", 1, 5000) == 1
        client.close()
        # the database stayed active, and the REST API shows the address as its external endpoint
        assert wait_active(cluster, ns, "lbdb", timeout=5)
        endpoints = cluster_api(cluster, ns, lambda api: api.bdb(uid))["endpoints"]
        assert [e["addr"] for e in endpoints if e["addr_type"] == "external"] == [[address]], endpoints
    finally:
        kubectl(cluster, "-n", ns, "delete", "redb", "lbdb", "--wait=false", check=False)
        _rigger_types(redb_env, None)
