"""The validating webhook, served by the operator over HTTPS with a certificate it makes itself and
whose CA it publishes into deploy/admission/webhook.yaml's configuration (with the ClusterRole of
deploy/admission/role.yaml): invalid specs are refused before they are stored. Nothing silently
weakened: a REDB asking for TLS and no default user is refused naming both fields; ignored and
misspelt fields are stored and named in kubectl's warnings, in the SpecValid condition and in a
Warning event; an object stored before the webhook refused a value can still be updated (with a
warning), but not changed to another refused value."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator.support import events, exists, webhook_objects, webhook_operator

from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    eventually,
    free_port,
    kubectl,
    operator_namespace,
    rec_manifest,
    rec_status,
)

pytestmark = pytest.mark.integration

CONFIGURATION = "redis-enterprise-admission"
SUPPORT_CONFIGURATION = f"{CONFIGURATION}-support"
ISSUE_17_MANIFEST = """\
apiVersion: app.redislabs.com/v1alpha1
kind: RedisEnterpriseDatabase
metadata: {name: tlsdb}
spec: {memorySize: 100MB, tlsMode: enabled, defaultUser: false}
"""


@pytest.fixture
def namespace(control_plane: LocalCluster) -> Iterator[str]:
    with operator_namespace(control_plane) as name:
        yield name


def _applied(
    cluster: LocalCluster, namespace: str, manifest: str | dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return kubectl(cluster, "-n", namespace, "apply", "-f", "-", input=text, check=False)


def _apply(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> str:
    """kubectl's complaint, or "" when the object was stored."""
    result = _applied(cluster, namespace, body)
    return result.stderr if result.returncode else ""


def test_webhook_refuses_invalid_specs(control_plane: LocalCluster, namespace: str, tmp_path: Path) -> None:
    with webhook_operator(control_plane, namespace, tmp_path, CONFIGURATION) as (operator, objects):

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


def _redb(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": name},
        "spec": spec,
    }


def _ignored_fields_condition(cluster: LocalCluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """The object's SpecValid condition once its reason is IgnoredFields ({} until then)."""
    result = kubectl(cluster, "-n", namespace, "get", kind, name, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    conditions = (json.loads(result.stdout).get("status") or {}).get("conditions") or []
    found = next((c for c in conditions if c.get("type") == "SpecValid"), {})
    return found if found.get("reason") == "IgnoredFields" else {}


def test_refused_and_ignored_fields_are_named_at_apply(
    control_plane: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    # stored before any webhook refused it, as by an older operator
    assert _apply(control_plane, namespace, _redb("legacy", type="memcached")) == ""
    try:
        with webhook_operator(control_plane, namespace, tmp_path, SUPPORT_CONFIGURATION) as (operator, _):
            # the apiserver may take a moment to call the webhook with the operator's CA
            eventually(
                "the webhook in effect",
                lambda: "denied" in _applied(control_plane, namespace, rec_manifest(nodes=2)).stderr,
                timeout=90,
            )

            # a REC with ignored and misspelt fields is stored, and kubectl prints a warning per field
            applied = _applied(
                control_plane, namespace, rec_manifest(enforceIPv4=True, bootstrapperImageSpec={}, nodess=5)
            )
            assert applied.returncode == 0, applied.stderr
            assert "Warning: spec.enforceIPv4: ignored" in applied.stderr
            assert "Warning: spec.bootstrapperImageSpec: ignored" in applied.stderr
            assert "Warning: spec.nodess: unknown field" in applied.stderr
            condition = eventually(
                "the REC's SpecValid condition naming the ignored fields",
                lambda: _ignored_fields_condition(control_plane, namespace, "rec", "rec"),
            )
            assert condition["status"] == "True" and "spec.enforceIPv4" in condition["message"]
            assert rec_status(control_plane, namespace)["specStatus"] == "Valid"
            warned = eventually(
                "an IgnoredFields event", lambda: events(control_plane, namespace, "IgnoredFields")
            )
            assert warned[0]["type"] == "Warning" and "spec.nodess" in warned[0]["message"]

            # the manifest of issue 17 is accepted without a warning (TLS and defaultUser: false are built)
            accepted = _applied(control_plane, namespace, ISSUE_17_MANIFEST)
            assert accepted.returncode == 0 and "Warning" not in accepted.stderr, accepted.stderr
            assert exists(control_plane, namespace, "redb", "tlsdb")

            # an ignored and a misspelt REDB field: stored, warned, named in the status
            applied = _applied(control_plane, namespace, _redb("plain", ossCluster=True, memroySize="1GB"))
            assert applied.returncode == 0, applied.stderr
            assert "Warning: spec.ossCluster: ignored" in applied.stderr
            assert "Warning: spec.memroySize: unknown field" in applied.stderr
            condition = eventually(
                "the REDB's SpecValid condition naming the ignored fields",
                lambda: _ignored_fields_condition(control_plane, namespace, "redb", "plain"),
            )
            assert "spec.memroySize" in condition["message"]

            # what was stored before is kept on update (with a warning) ...
            kept = _applied(control_plane, namespace, _redb("legacy", type="memcached", memorySize="200MB"))
            assert kept.returncode == 0, kept.stderr
            assert "Warning: spec.type: memcached is not implemented yet (kept because" in kept.stderr
            # ... but a newly set refused value is not
            changed = _applied(
                control_plane, namespace, _redb("legacy", type="memcached", tlsMode="enabled")
            )
            assert changed.returncode != 0 and "spec.tlsMode" in changed.stderr
            assert "spec.type" not in changed.stderr.split("denied", 1)[-1]
            assert "Forbidden" not in operator.log()
    finally:
        # REDB finalizers wait for a cluster that never ran; without the operator they go by hand
        for name in ("legacy", "plain", "tlsdb"):
            eventually(
                f"REDB {name}'s finalizer removed",
                lambda name=name: _drop_finalizers(control_plane, namespace, name),
                timeout=30,
            )


def _drop_finalizers(cluster: LocalCluster, namespace: str, name: str) -> bool:
    """True once the REDB has no finalizer (the webhook configuration may still be cached for a
    moment after its deletion, and its operator is gone)."""
    result = kubectl(cluster, "-n", namespace, "patch", "redb", name, "--type=merge",
                     "-p", '{"metadata":{"finalizers":null}}', check=False)
    return result.returncode == 0 or "NotFound" in result.stderr
