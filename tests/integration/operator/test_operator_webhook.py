"""The validating webhook, served by the operator over HTTPS with a certificate it makes itself and
whose CA it publishes into deploy/admission/webhook.yaml's configuration (with the ClusterRole of
deploy/admission/role.yaml): invalid specs are refused before they are stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.local.support import eventually, kubectl
from tests.integration.operator.support import (
    exists,
    free_port,
    operator_namespace,
    rec_manifest,
    rec_status,
    start_operator,
    webhook_objects,
)

from recluster.local.cluster import LocalCluster

pytestmark = pytest.mark.integration

CONFIGURATION = "redis-enterprise-admission"


@pytest.fixture
def namespace(control_plane: LocalCluster) -> Iterator[str]:
    with operator_namespace(control_plane) as name:
        yield name


def _apply(cluster: LocalCluster, namespace: str, body: dict) -> str:  # type: ignore[type-arg]
    result = kubectl(cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(body), check=False)
    return result.stderr if result.returncode else ""


def test_webhook_refuses_invalid_specs(control_plane: LocalCluster, namespace: str, tmp_path: Path) -> None:
    port = free_port()
    objects = webhook_objects(namespace, port, CONFIGURATION)
    kubectl(
        control_plane,
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    operator = start_operator(
        control_plane,
        namespace,
        tmp_path,
        OPERATOR_WEBHOOK_PORT=str(port),
        OPERATOR_WEBHOOK_HOST="127.0.0.1",
        OPERATOR_WEBHOOK_NAMES="127.0.0.1",
        OPERATOR_WEBHOOK_CONFIGURATION=CONFIGURATION,
    )
    try:

        def ca_published() -> bool:
            config = json.loads(
                kubectl(
                    control_plane, "get", "validatingwebhookconfiguration", CONFIGURATION, "-o", "json"
                ).stdout
            )
            return bool(config["webhooks"][0]["clientConfig"].get("caBundle"))

        eventually("the operator's CA in the webhook configuration", ca_published, timeout=60)
        # re-applying the installed manifest (no caBundle in it) keeps the operator's CA
        kubectl(control_plane, "apply", "-f", "-", input=json.dumps(objects[-1]))
        assert ca_published()
        # the apiserver may take a moment to pick up the new configuration
        error = eventually(
            "a refusal", lambda: _apply(control_plane, namespace, rec_manifest(nodes=2)), timeout=60
        )
        assert "spec.nodes" in error and "denied" in error
        assert not exists(control_plane, namespace, "rec", "rec")
        assert _apply(control_plane, namespace, rec_manifest(nodes=3)) == ""
        eventually(
            "the StatefulSet", lambda: exists(control_plane, namespace, "statefulset", "rec"), timeout=90
        )
        error = _apply(control_plane, namespace, rec_manifest(nodes=3, license="x", licenseSecretName="lic"))
        assert "spec.licenseSecretName" in error
        eventually("Valid", lambda: rec_status(control_plane, namespace).get("specStatus") == "Valid")
        assert "Forbidden" not in operator.log()
    finally:
        operator.stop()
        for obj in reversed(objects):
            kubectl(
                control_plane,
                "delete",
                obj["kind"].lower(),
                obj["metadata"]["name"],
                "--wait=false",
                check=False,
            )


def test_a_rec_being_deleted_can_lose_its_finalizer_while_the_webhook_is_down(
    control_plane: LocalCluster, namespace: str
) -> None:
    """The webhook (failurePolicy Fail) with nothing behind it, as when the operator's namespace is
    deleted: new RECs are refused, but a REC being deleted is not sent to it, so its finalizer can
    be removed and the REC goes (without the matchConditions it stayed Terminating)."""
    name = f"{CONFIGURATION}-down"
    objects = webhook_objects(namespace, free_port(), name)  # nothing listens there
    manifest = rec_manifest(nodes=3)
    manifest["metadata"]["finalizers"] = ["redbfinalizer.redisenterpriseclusters.app.redislabs.com"]
    # stored before the webhook configuration exists
    kubectl(control_plane, "-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    kubectl(control_plane, "apply", "-f", "-", input=listing)
    try:
        eventually(
            "the webhook in effect (a REC refused because nothing answers)",
            lambda: "failed calling webhook" in _apply(control_plane, namespace, rec_manifest("other")),
            timeout=60,
        )
        kubectl(control_plane, "-n", namespace, "delete", "rec", "rec", "--wait=false")
        patch = kubectl(
            control_plane, "-n", namespace, "patch", "rec", "rec", "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )
        assert patch.returncode == 0, patch.stderr
        eventually("the REC gone", lambda: not exists(control_plane, namespace, "rec", "rec"), timeout=30)
    finally:
        for obj in reversed(objects):
            kind, obj_name = obj["kind"].lower(), obj["metadata"]["name"]
            kubectl(control_plane, "delete", kind, obj_name, "--wait=false", check=False)
