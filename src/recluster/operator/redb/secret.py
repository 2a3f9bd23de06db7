"""The database secret (`redb-<name>` or `databaseSecretName`): `password`, `port`,
`service_names`, and for a TLS database `ca.crt`. Pure builders; the reconciler decides when to apply
them.

Ownership of the keys (no two writers for one key):
- `password`: the operator generates it once, only when the secret does not exist; a secret the
  user created first is honoured and never rewritten;
- `port`: the operator, once the cluster has assigned one;
- `ca.crt`: the operator, for a TLS database, from the cluster (GET /v1/cluster/certificates);
- `service_names`: the services rigger (it knows which Services exist).

A secret the operator created carries an owner reference to the REDB and the annotation
CREATED_BY_ANNOTATION; only such a secret is deleted with the REDB."""

from __future__ import annotations

import base64
from typing import Any

from recluster.api.common import GROUP
from recluster.api.redb import API_VERSION, KIND, RedisEnterpriseDatabase
from recluster.clients.kubernetes import secret_value as secret_value  # shared with the REC controller

CREATED_BY_ANNOTATION = f"{GROUP}/created-by"
CREATED_BY = "redis-enterprise-operator"
REDB_LABEL = "redis.io/redb"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def owner_reference(redb: RedisEnterpriseDatabase) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": redb.metadata.name,
        "uid": redb.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def created_by_operator(secret: dict[str, Any] | None) -> bool:
    annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(CREATED_BY_ANNOTATION) == CREATED_BY


def build_new_secret(redb: RedisEnterpriseDatabase, password: str) -> dict[str, Any]:
    """The secret the operator creates when none exists (applied once; never re-applied)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": redb.secret_name,
            "namespace": redb.metadata.namespace,
            "labels": {"app": "redis-enterprise", REDB_LABEL: redb.metadata.name},
            "annotations": {CREATED_BY_ANNOTATION: CREATED_BY},
            "ownerReferences": [owner_reference(redb)],
        },
        "data": {"password": _b64(password)},
    }


CLIENT_CERT_KEY = "cert"  # a clientAuthenticationCertificates Secret's key (the public contract)
CA_KEY = "ca.crt"  # the CA a client of a TLS database trusts (the cluster's `proxy_cert`)


def ca_patch(secret: dict[str, Any] | None, ca_pem: str | None) -> dict[str, Any] | None:
    """A merge patch that publishes the database CA, or None when already published."""
    if not ca_pem or secret_value(secret, CA_KEY) == ca_pem:
        return None
    return {"data": {CA_KEY: _b64(ca_pem)}}


def port_patch(secret: dict[str, Any] | None, port: int | None) -> dict[str, Any] | None:
    """A merge patch that records the database's port, or None when already recorded."""
    if port is None or secret_value(secret, "port") == str(port):
        return None
    return {"data": {"port": _b64(str(port))}}
