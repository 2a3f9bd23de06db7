"""A TLS database serving a certificate the user brings (REC
`certificates.proxyCertificateSecretName`, a kubernetes.io/tls Secret as cert-manager makes it): a
client verifies it against the CA the operator publishes (ConfigMap `<rec>-database-ca`) by the
Service's DNS name; then the Secret changes to a certificate of a new CA while a client writes with
WAIT over TLS: the new certificate is served, no confirmed write is lost, no shard restarts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel
from tests.e2e.redb.conftest import RedbEnv
from tests.integration.node.support import der, peer_certificate

from recluster.certificates import Authority, Pem, not_after
from recluster.local.harness import (
    NODE_SELECTOR,
    apply_redb,
    eventually,
    kubectl,
    redb_manifest,
    secret_data,
    service,
    wait_active,
)

pytestmark = pytest.mark.e2e

REC = "rec"
SECRET = "db-cert"


def tls_secret(leaf: Pem, ca: Authority) -> str:
    data = {"tls.crt": leaf.certificate, "tls.key": leaf.key, "ca.crt": ca.pem().certificate}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                       "metadata": {"name": SECRET},
                       "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def published_ca(cluster: Any, ns: str, root: Authority) -> str | None:
    found = kubectl(cluster, "-n", ns, "get", "configmap", f"{REC}-database-ca", "-o", "json", check=False)
    if found.returncode != 0:
        return None
    text = str(json.loads(found.stdout).get("data", {}).get("ca.crt", ""))
    return text if root.pem().certificate.strip() in text else None


def run_ids(sentinel: Sentinel, password: str, ca: Path) -> dict[tuple[str, int], str]:
    """run_id of the master and the replica shard, found through discovery, by their addresses."""
    addresses = [sentinel.discover_master("certdb"), *sentinel.discover_slaves("certdb")]
    ids = {}
    for host, port in addresses:
        shard = redis.Redis(host=host, port=port, password=password, socket_timeout=3, ssl=True,
                            ssl_ca_certs=str(ca), ssl_check_hostname=False, ssl_cert_reqs="required")
        ids[(host, port)] = str(shard.info("server")["run_id"])
        shard.close()
    return ids


class Writer(threading.Thread):
    """SET then WAIT 1 over one TLS connection through the Service until stopped: the keys a
    replica confirmed, and the writes that failed."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.client, self.confirmed, self.errors = client, list[str](), 0
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            key = f"rot{i}"
            i += 1
            try:
                self.client.set(key, key)
                if self.client.execute_command("WAIT", 1, 2000) == 1:
                    self.confirmed.append(key)
            except redis.RedisError:
                self.errors += 1
                time.sleep(0.1)


def test_a_user_certificate_served_then_rotated_while_a_client_writes(redb_env: RedbEnv,
                                                                       tmp_path: Path) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    started = time.monotonic()
    assert apply_redb(cluster, ns, redb_manifest("certdb", replication=True, tlsMode="enabled")) == ""
    status = wait_active(cluster, ns, "certdb")
    port = status["internalEndpoints"][0]["port"]
    dns = f"certdb.{ns}.svc.cluster.local"
    names = ["certdb", f"certdb.{ns}", f"certdb.{ns}.svc", dns]
    root1 = Authority.create("user databases CA 1", days=30)
    leaf1 = root1.issue("certdb", names, days=20)
    kubectl(cluster, "-n", ns, "apply", "-f", "-", input=tls_secret(leaf1, root1))
    kubectl(cluster, "-n", ns, "patch", "rec", REC, "--type", "merge", "-p",
            json.dumps({"spec": {"certificates": {"proxyCertificateSecretName": SECRET}}}))

    ca = tmp_path / "ca.crt"
    ca.write_text(eventually("ConfigMap rec-database-ca with the user's CA",
                             lambda: published_ca(cluster, ns, root1), timeout=60))
    svc = eventually("Service certdb", lambda: service(cluster, ns, "certdb"), timeout=60)
    address = svc["spec"]["clusterIP"]

    def serves(leaf: Pem, checked_by: Path | None) -> bool:
        try:
            return peer_certificate(address, port, dns, checked_by) == der(leaf.certificate)
        except OSError:
            return False

    # verified by the Service's DNS name against the published CA
    eventually("the user's certificate served through the Service", lambda: serves(leaf1, ca), timeout=60)
    secret = eventually("the database secret with the user's CA",
                        lambda: (lambda d: d if d and root1.pem().certificate.strip() in d.get("ca.crt", "")
                                 else None)(secret_data(cluster, ns, "redb-certdb")), timeout=60)
    password = secret["password"]
    rec_status = json.loads(kubectl(cluster, "-n", ns, "get", "rec", REC, "-o", "json").stdout)["status"]
    proxy = rec_status["certificatesStatus"]["proxy"]
    assert proxy["source"] == "secret" and proxy["secretName"] == SECRET
    assert dt.datetime.fromisoformat(proxy["notAfter"]) == not_after(leaf1.certificate)

    client = redis.Redis(host=address, port=port, password=password, socket_timeout=5, ssl=True,
                         ssl_ca_certs=str(ca), ssl_check_hostname=False, ssl_cert_reqs="required")
    assert client.set("hello", "world") and client.execute_command("WAIT", 1, 5000) == 1

    pods = json.loads(kubectl(cluster, "-n", ns, "get", "pods", "-l", NODE_SELECTOR, "-o", "json").stdout)
    before = run_ids(discovery(pods, ca), password, ca)
    assert len(before) == 2

    # rotation: a certificate of a new CA while the client writes
    writer = Writer(client)
    writer.start()
    time.sleep(2)
    root2 = Authority.create("user databases CA 2", days=30)
    leaf2 = root2.issue("certdb", names, days=20)
    changed = time.monotonic()
    kubectl(cluster, "-n", ns, "apply", "-f", "-", input=tls_secret(leaf2, root2))
    eventually("the new certificate served", lambda: serves(leaf2, None), timeout=60, interval=0.2)
    served_after = time.monotonic() - changed
    ca2 = tmp_path / "ca2.crt"
    ca2.write_text(eventually("ConfigMap rec-database-ca with the new CA",
                              lambda: published_ca(cluster, ns, root2), timeout=60))
    published_after = time.monotonic() - changed
    assert serves(leaf2, ca2)  # verified by name against the newly published CA
    time.sleep(2)
    writer.stop.set()
    writer.join(timeout=10)
    fresh = redis.Redis(host=address, port=port, password=password, socket_timeout=5, ssl=True,
                        ssl_ca_certs=str(ca2), ssl_check_hostname=False, ssl_cert_reqs="required")
    values = fresh.mget(writer.confirmed)
    lost = [key for key, value in zip(writer.confirmed, values, strict=True) if value != key.encode()]
    assert run_ids(discovery(pods, ca2), password, ca2) == before, "a shard restarted"
    print(f"rotation: {len(writer.confirmed)} writes confirmed by WAIT, {len(lost)} lost, "
          f"{writer.errors} failed; new certificate served after {served_after:.1f} s, "
          f"CA published after {published_after:.1f} s; test {time.monotonic() - started:.0f} s")
    assert len(writer.confirmed) > 20 and not lost

    # back to the cluster's own CA
    kubectl(cluster, "-n", ns, "patch", "rec", REC, "--type", "json", "-p",
            json.dumps([{"op": "remove", "path": "/spec/certificates"}]))
    eventually("the cluster's own certificate served again", lambda: not serves(leaf2, None), timeout=60)
    for c in (client, fresh):
        c.close()
    kubectl(cluster, "-n", ns, "delete", "redb", "certdb", "--wait=false")
    kubectl(cluster, "-n", ns, "delete", "secret", SECRET, "--wait=false")


def discovery(pods: dict[str, Any], ca: Path) -> Sentinel:
    """The node pods' TLS sentinels (8002), verified against `ca` by address."""
    checked = {"ssl": True, "ssl_ca_certs": str(ca), "ssl_check_hostname": True, "ssl_cert_reqs": "required"}
    return Sentinel([(p["status"]["podIP"], 8002) for p in pods["items"] if p["status"].get("podIP")],
                    socket_timeout=3.0, sentinel_kwargs=checked)
