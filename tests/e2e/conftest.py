"""One REC for the e2e tests that need a running REC but not one of their own (the REDB tests, the
admin CLI's): the operator on the host, as the REC controller's tests run it (the RBAC of deploy/,
tests/integration/operator/support.py), with its admission webhook for REDBs registered under a
configuration of this test run's own (a certificate made here, so no cluster-wide object of another
run is touched). A REC takes about two minutes to come up on the 2-core CI machine: tests share it and
delete the databases they made."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.redb.support import delete_redbs

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    free_port,
    kubectl,
    operator_namespace,
    rec_manifest,
    start_operator,
    strip_finalizers,
    wait_state,
)
from recluster.operator.tls import issue_server_certificate


@dataclass
class RedbEnv:
    cluster: LocalCluster
    namespace: str
    operator: OperatorProcess


def _webhook(namespace: str, port: int, ca_pem: str) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": f"redb-admission-{namespace}"},
        "webhooks": [
            {
                "name": "redb.admission.recluster.redis.io",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate-redb",
                    "caBundle": base64.b64encode(ca_pem.encode()).decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["app.redislabs.com"],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["redisenterprisedatabases"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
                    ]
                },
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 15,
                "admissionReviewVersions": ["v1"],
            }
        ],
    }


def _keep_node_logs(cluster: LocalCluster, namespace: str, workdir: Path) -> None:
    """The node daemons' logs beside the operator's, for a failure seen only after the run (the pods go
    with the namespace)."""
    for ordinal in range(3):
        pod = f"rec-{ordinal}"
        logs = kubectl(cluster, "-n", namespace, "logs", pod, "--all-containers", check=False)
        (workdir / f"{pod}.log").write_text(logs.stdout + logs.stderr)


@pytest.fixture(scope="session")
def redb_env(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedbEnv]:
    workdir = tmp_path_factory.mktemp("redb")
    with operator_namespace(local_cluster) as namespace:
        port = free_port()
        material = issue_server_certificate("127.0.0.1", ["127.0.0.1"])
        certs = workdir / "webhook"
        certs.mkdir()
        (certs / "tls.crt").write_text(material.certificate_pem)
        (certs / "tls.key").write_text(material.private_key_pem)
        (certs / "tls.key").chmod(0o600)
        (certs / "ca.crt").write_text(material.ca_certificate_pem)
        webhook = _webhook(namespace, port, material.ca_certificate_pem)
        operator = start_operator(
            local_cluster,
            namespace,
            workdir,
            OPERATOR_WEBHOOK_PORT=str(port),
            OPERATOR_WEBHOOK_HOST="127.0.0.1",
            OPERATOR_WEBHOOK_CERT_DIR=str(certs),
        )
        kubectl(local_cluster, "apply", "-f", "-", input=json.dumps(webhook))
        try:
            kubectl(local_cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(rec_manifest()))
            wait_state(local_cluster, namespace, "Running", timeout=900)
            yield RedbEnv(local_cluster, namespace, operator)
        finally:
            _keep_node_logs(local_cluster, namespace, workdir)
            delete_redbs(local_cluster, namespace)
            operator.stop()
            kubectl(
                local_cluster,
                "delete",
                "validatingwebhookconfiguration",
                webhook["metadata"]["name"],
                check=False,
            )
            strip_finalizers(local_cluster, namespace, "redb")


__all__ = ["Path", "RedbEnv"]
