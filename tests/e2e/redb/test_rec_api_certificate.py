"""The REC's REST API serving a certificate the user brings (`certificates.apiCertificateSecretName`, a
kubernetes.io/tls Secret as cert-manager makes it): every node pod serves it to a client naming the
user's host, verified against the user's CA alone (a Secret that cannot be served before it is named
in the status and an event, and changes nothing); the cluster's own callers (the operator, naming a
pod) keep the operator's certificate, so the REC stays Running; removing the field (which the
operator can only do through the REST API) goes back to the operator's certificate everywhere."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from tests.e2e.conftest import RedbEnv
from tests.integration.node.support import der, peer_certificate

from recluster.api.ports import API_PORT
from recluster.certificates import Authority, Pem, not_after
from recluster.local.harness import NODE_SELECTOR, eventually, kubectl, rec_status, secret_data

pytestmark = pytest.mark.e2e

REC = "rec"
SECRET = "api-cert"
HOST = "api.example.test"  # the user's name for the API (an ingress, a load balancer)


def tls_secret(leaf: Pem, ca: Authority) -> str:
    data = {"tls.crt": leaf.certificate, "tls.key": leaf.key, "ca.crt": ca.pem().certificate}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                       "metadata": {"name": SECRET},
                       "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def served(ip: str, name: str, ca: Path | None = None) -> bytes | None:
    try:
        return peer_certificate(ip, API_PORT, name, ca)
    except OSError:
        return None


def test_the_rest_api_serves_a_cert_manager_secret_and_the_operator_keeps_talking(redb_env: RedbEnv,
                                                                                   tmp_path: Path) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    started = time.monotonic()
    listed = kubectl(cluster, "-n", ns, "get", "pods", "-l", NODE_SELECTOR, "-o", "json").stdout
    pods = [p for p in json.loads(listed)["items"] if p["status"].get("podIP")]
    ips = [p["status"]["podIP"] for p in pods]
    # what the operator names a pod by (its stable DNS name) and the CA it checks it with
    own_names = {p["status"]["podIP"]: f"{p['spec']['hostname']}.{p['spec']['subdomain']}.{ns}.svc."
                 "cluster.local" for p in pods}
    rec_ca = tmp_path / "rec-ca.crt"
    rec_ca.write_text((secret_data(cluster, ns, f"{REC}-tls") or {})["ca.crt"])
    user_ca = tmp_path / "user-ca.crt"
    root = Authority.create("user API CA", days=30)
    user_ca.write_text(root.pem().certificate)
    leaf = root.issue(HOST, [HOST], days=20)

    # a Secret that cannot be served (the key of another certificate): named, and nothing changes
    wrong_key = root.issue("other", [HOST], days=1).key
    kubectl(cluster, "-n", ns, "apply", "-f", "-", input=tls_secret(Pem(leaf.certificate, wrong_key), root))
    kubectl(cluster, "-n", ns, "patch", "rec", REC, "--type", "merge", "-p",
            json.dumps({"spec": {"certificates": {"apiCertificateSecretName": SECRET}}}))
    refused = eventually("status.certificatesStatus.api naming the problem",
                         lambda: ((rec_status(cluster, ns).get("certificatesStatus") or {}).get("api") or {})
                         .get("message"), timeout=60)
    assert "spec.certificates.apiCertificateSecretName" in refused and "the key is not the key" in refused
    events = kubectl(cluster, "-n", ns, "get", "events", "--field-selector", "reason=ApiCertificate",
                     "-o", "json").stdout
    assert "the key is not the key" in events and "PRIVATE KEY" not in events
    assert "PRIVATE KEY" not in json.dumps(rec_status(cluster, ns))
    assert all(served(ip, HOST) not in (None, der(leaf.certificate)) for ip in ips)

    kubectl(cluster, "-n", ns, "apply", "-f", "-", input=tls_secret(leaf, root))
    changed = time.monotonic()
    eventually(f"every node's REST API serving the user's certificate to {HOST}",
               lambda: all(served(ip, HOST, user_ca) == der(leaf.certificate) for ip in ips), timeout=60,
               interval=0.2)
    took = time.monotonic() - changed
    for ip, name in own_names.items():  # the operator's view of a pod: its own certificate, verified
        assert served(ip, name, rec_ca) not in (None, der(leaf.certificate)), name
    api = eventually("status.certificatesStatus.api from the Secret, without the message",
                     lambda: (lambda s: s if s.get("source") == "secret" and "message" not in s else None)(
                         (rec_status(cluster, ns).get("certificatesStatus") or {}).get("api") or {}),
                     timeout=60)
    assert api["secretName"] == SECRET
    assert dt.datetime.fromisoformat(api["notAfter"]) == not_after(leaf.certificate) and "message" not in api
    assert "PRIVATE KEY" not in json.dumps(rec_status(cluster, ns))
    assert rec_status(cluster, ns).get("state") == "Running"

    # removed: the operator has to reach the REST API to undo it
    kubectl(cluster, "-n", ns, "patch", "rec", REC, "--type", "json", "-p",
            json.dumps([{"op": "remove", "path": "/spec/certificates"}]))
    eventually("the operator's certificate served again to every name",
               lambda: all(served(ip, HOST) not in (None, der(leaf.certificate)) for ip in ips), timeout=60)
    eventually("status.certificatesStatus.api back to the cluster's",
               lambda: ((rec_status(cluster, ns).get("certificatesStatus") or {}).get("api") or {})
               .get("source") == "cluster", timeout=60)
    assert rec_status(cluster, ns).get("state") == "Running"
    kubectl(cluster, "-n", ns, "delete", "secret", SECRET, "--wait=false")
    print(f"user API certificate served by {len(ips)} pods {took:.1f} s after the Secret was fixed; "
          f"test {time.monotonic() - started:.0f} s")
