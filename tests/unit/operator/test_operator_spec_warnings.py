"""Fields the operator does not act on reach the user: in the admission response (warnings or a
refusal), in the SpecValid condition and (through spec_event) a Warning event; and what an older
operator accepted is kept rather than refused on update."""

from __future__ import annotations

import json
from typing import Any

import kopf
import pytest

from recluster.api import check_redb, describe, redb_warnings
from recluster.api.conditions import spec_event
from recluster.api.rec import ClusterState
from recluster.operator.accepted import ACCEPTED_SPEC_ANNOTATION
from recluster.operator.rec.status import Observed, valid_status
from recluster.operator.redb.reconcile import old_body
from recluster.operator.redb.status import DatabaseView, database_status
from recluster.operator.webhook import Verdict, rec_admission

pytestmark = pytest.mark.unit


def rec(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1",
        "kind": "RedisEnterpriseCluster",
        "metadata": {"name": "rec", "namespace": "ns", "generation": 2},
        "spec": {"nodes": 3, **spec},
    }


def redb(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "app.redislabs.com/v1alpha1",
        "kind": "RedisEnterpriseDatabase",
        "metadata": {"name": "db", "namespace": "ns", "generation": 1, "annotations": annotations or {}},
        "spec": spec,
    }


def test_rec_admission_warns_and_refuses() -> None:
    verdict = rec_admission(rec(enforceIPv4=True, nodez=5), None)
    assert verdict.refusal is None
    assert [w.split(":")[0] for w in verdict.warnings] == ["spec.enforceIPv4", "spec.nodez"]
    for key in ("proxy", "api", "cm", "metricsExporter"):
        assert rec_admission(rec(certificates={f"{key}CertificateSecretName": "p"}), None).refusal is None
    refused = rec_admission(rec(certificates={"syncerCertificateSecretName": "p"}), None)
    assert refused.refusal is not None
    assert refused.refusal.startswith(
        "spec.certificates.syncerCertificateSecretName: p is not implemented yet")
    # an update keeping what the stored object had is allowed, with a warning
    stored = rec(certificates={"syncerCertificateSecretName": "p"})
    kept = rec_admission(rec(nodes=5, certificates={"syncerCertificateSecretName": "p"}), stored)
    assert kept.refusal is None and "accepted before" in kept.warnings[0]


def test_verdict_answers_kopf() -> None:
    response: list[str] = []
    Verdict(None, ["spec.x: ignored"]).answer(response)
    assert response == ["spec.x: ignored"]
    with pytest.raises(kopf.AdmissionError):
        Verdict("spec.tlsMode: enabled is not implemented yet", ["w"]).answer(response)
    assert response == ["spec.x: ignored", "w"]  # warnings go out with a refusal too


def test_rec_status_names_the_ignored_fields_once() -> None:
    body = rec(enforceIPv4=True)
    observed = Observed(ClusterState.RUNNING, "3 nodes ready", 3, 3, converging=False)
    status = valid_status(body, observed, "spec.enforceIPv4: ignored: nothing reads it")
    spec_valid = next(c for c in status["conditions"] if c["type"] == "SpecValid")
    assert spec_valid["status"] == "True" and spec_valid["reason"] == "IgnoredFields"
    assert "spec.enforceIPv4" in spec_valid["message"]
    assert status["specStatus"] == "Valid"
    assert spec_event(body.get("status"), status) == ("IgnoredFields", spec_valid["message"])
    again = valid_status({**body, "status": status}, observed, "spec.enforceIPv4: ignored: nothing reads it")
    assert spec_event(status, again) is None  # the same message: no second event
    other = valid_status({**body, "status": status}, observed, "spec.volumes: ignored: not applied")
    assert spec_event(status, other) == ("IgnoredFields", other["conditions"][0]["message"])


def test_redb_status_with_warnings() -> None:
    body = redb(ossCluster=True)
    view = DatabaseView(None, [], None, None, "rec", warnings=describe(redb_warnings(body)))
    status = database_status(body, view, "now")
    spec_valid = next(c for c in status["conditions"] if c["type"] == "SpecValid")
    assert spec_valid["reason"] == "IgnoredFields" and "spec.ossCluster" in spec_valid["message"]


def test_redb_old_body_keeps_what_was_accepted() -> None:
    legacy = redb(type="memcached")
    # never accepted, no database: a new object, refusals apply
    assert old_body(legacy, None) is None
    # a database made by an older operator: its spec was accepted as it is
    old = old_body(legacy, {"port": 12000})
    assert old is not None and old["spec"] == {"type": "memcached", "databasePort": 12000}
    assert check_redb(legacy, old, cluster_exists=True).metadata.name
    assert [w.field for w in redb_warnings(legacy, old)] == ["spec.type"]
    # the accepted annotation wins over the current spec: a newly set refused value is refused
    annotated = redb({ACCEPTED_SPEC_ANNOTATION: json.dumps({"memorySize": "100MB"})}, tlsMode="enabled")
    old = old_body(annotated, {"port": 12000})
    assert old is not None and old["spec"] == {"memorySize": "100MB", "databasePort": 12000}
    with pytest.raises(Exception, match=r"spec\.tlsMode"):
        check_redb(annotated, old, cluster_exists=True)
    # without a database the port the spec had is not pinned (as before)
    pinned = redb({ACCEPTED_SPEC_ANNOTATION: json.dumps({"databasePort": 12000})})
    assert old_body(pinned, None) == {"metadata": pinned["metadata"], "spec": {}}
