"""The certificates a user brings to a REC: `spec.certificates.proxyCertificateSecretName` (the
databases'), `apiCertificateSecretName` (the REST API, 9443), `cmCertificateSecretName` (the console,
8443) and `metricsExporterCertificateSecretName` (8070), each kept in the cluster (PUT
/v1/cluster/update_cert with its name, or DELETE when the field is removed), and the CA a database
client needs published as the ConfigMap `<rec>-database-ca` (key `ca.crt`, owned by the REC) that a
platform can mount. A Secret that cannot be served (the cluster's check, recluster.certificates) is
named in the status and an event; the cluster keeps serving what it served.

The cluster's own callers of the REST API (this operator, the rigger, the broker, the admin CLI, the
nodes, the console) name a pod or one of the REC's Services, and the nodes serve them the operator's
certificate whatever a user brings (node/served_tls.py): nothing they trust changes."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from recluster.api.rec import RedisEnterpriseCluster
from recluster.certificates import (
    CertificateRefused,
    check_served_certificate,
    earliest_expiry,
    join_pem,
    not_after,
)
from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import Kube, secret_value
from recluster.operator.rec.cluster import ClusterClient, ClusterView
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import database_ca_name
from recluster.operator.status import post_event

log = logging.getLogger(__name__)

CA_KEY = "ca.crt"


@dataclass(frozen=True)
class SecretCertificate:
    certificate: str
    key: str
    ca: str

    def __repr__(self) -> str:  # never print a private key
        return "SecretCertificate(<redacted>)"


@dataclass(frozen=True)
class Brought:
    """One certificate a user can bring: its name in update_cert, its key in
    status.certificatesStatus, its spec field, the event reason, and where GET
    /v1/cluster/certificates shows what the cluster serves."""

    name: str
    status_key: str
    spec_key: str
    reason: str
    served_key: str
    serves: str  # "the databases serve", for the events

    @property
    def field(self) -> str:
        return f"spec.certificates.{self.spec_key}"


PROXY = Brought("proxy", "proxy", "proxyCertificateSecretName", "DatabaseCertificate", "proxy_user_cert",
                "the databases serve")
BROUGHT = (
    PROXY,
    Brought("api", "api", "apiCertificateSecretName", "ApiCertificate", "api_cert", "the REST API serves"),
    Brought("cm", "cm", "cmCertificateSecretName", "ConsoleCertificate", "cm_cert", "the console serves"),
    Brought("metrics_exporter", "metricsExporter", "metricsExporterCertificateSecretName",
            "MetricsCertificate", "metrics_exporter_cert", "the metrics endpoint serves"),
)


def secret_name_of(rec: RedisEnterpriseCluster, brought: Brought) -> str | None:
    certificates = rec.spec.certificates
    if certificates is None:
        return None
    value = certificates.model_dump(by_alias=True).get(brought.spec_key)
    return str(value) if value else None


def read_secret(secret: dict[str, Any] | None, name: str,
                brought: Brought = PROXY) -> SecretCertificate | str:
    """The certificate of a user's Secret (pure): Redis Enterprise's keys `certificate` and `key`
    (`name`, when there, must be the certificate's: `proxy`, `api`, `cm`, `metrics_exporter`), or
    kubernetes.io/tls's `tls.crt` and `tls.key` with `ca.crt` (cert-manager). `ca.crt` is read beside
    either. A str: what is wrong, for the status."""
    field = brought.field
    if secret is None:
        return f"{field}: Secret {name} does not exist"
    label = secret_value(secret, "name")
    if label is not None and label.strip() not in ("", brought.name):
        return (f"{field}: Secret {name} is for the {label.strip()!r} certificate (key `name`), "
                f"not {brought.name!r}")
    for cert_key, key_key in (("certificate", "key"), ("tls.crt", "tls.key")):
        certificate, key = secret_value(secret, cert_key), secret_value(secret, key_key)
        if certificate and key:
            return SecretCertificate(certificate, key, secret_value(secret, CA_KEY) or "")
    return f"{field}: Secret {name} has neither `certificate` and `key` nor `tls.crt` and `tls.key`"


def build_ca_config_map(rec: RedisEnterpriseCluster, ca_pem: str) -> dict[str, Any]:
    """ConfigMap `<rec>-database-ca`: what a client of the REC's TLS databases trusts (pure)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": object_meta(rec, database_ca_name(rec)),
            "data": {CA_KEY: ca_pem}}


async def keep_certificates(
    kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, view: ClusterView, client: ClusterClient,
    own_certificate: str = "",
) -> dict[str, Any] | None:
    """`status.certificatesStatus` after this pass (None: no ready node to ask, the old one stays).
    `own_certificate`: the operator's certificate of the nodes (PEM), whose expiry the HTTPS servers
    show while they serve it."""
    via = next((m for m in view.members if m.ready and not m.deleting and m.ip), None)
    if via is None:
        return None
    statuses: dict[str, Any] = {}
    try:
        async with client.api(via) as api:
            current = await api.certificates()
            changed = False
            for brought in BROUGHT:
                status = await _keep_one(kube, body, rec, api, brought, current)
                changed |= bool(status.pop("changed", False))
                if status["source"] == "cluster" and brought is not PROXY and own_certificate:
                    status["notAfter"] = not_after(own_certificate).isoformat()
                statuses[brought.status_key] = status
            if changed:
                current = await api.certificates()
    except (httpx.HTTPError, ClusterApiError, OSError) as exc:  # no majority, a node restarting: next time
        log.warning("cluster %s/%s: cannot keep the brought certificates: %s", rec.namespace, rec.name, exc)
        return None
    ca_pem = str(current.get("proxy_cert") or "")
    if ca_pem:
        await kube.apply(build_ca_config_map(rec, ca_pem))
    expiry = earliest_expiry(ca_pem)
    if expiry is not None:  # when the CA a client trusts runs out (the database CA: rotate before)
        statuses[PROXY.status_key]["caNotAfter"] = expiry.isoformat()
    return statuses


async def _keep_one(kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, api: Any, brought: Brought,
                    current: dict[str, Any]) -> dict[str, Any]:
    """The certificate `brought` as its spec field asks: the Secret's sent when the cluster serves
    another, removed when the field is; its status (`changed`: the cluster was changed)."""
    name = secret_name_of(rec, brought)
    served = str(current.get(brought.served_key) or "")
    if name:
        status = await _follow_secret(kube, body, rec, api, brought, name, served)
        if status.get("message") and status["message"] != _previous_message(body, brought):
            await post_event(kube, body, "Warning", brought.reason, status["message"][:500])
        return status
    if served:
        await api.delete_cert(brought.name)
        await post_event(kube, body, "Normal", brought.reason, f"{brought.serves} the cluster's own "
                         "certificates again")
        return {"source": "cluster", "changed": True}
    return {"source": "cluster"}


async def _follow_secret(kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, api: Any,
                         brought: Brought, name: str, served: str) -> dict[str, Any]:
    read = read_secret(await kube.get("v1", "Secret", rec.namespace, name), name, brought)
    status: dict[str, Any] = {"source": "secret", "secretName": name}
    if isinstance(read, str):
        return status | {"message": read}
    try:
        checked = check_served_certificate(read.certificate, read.key, read.ca)
    except CertificateRefused as exc:
        return status | {"message": f"{brought.field}: Secret {name} cannot be served: {exc}"}
    status |= {"notAfter": checked.not_after.isoformat(), "fingerprint": _fingerprint(checked.chain)}
    if checked.chain == served:
        return status
    try:
        await api.update_cert(brought.name, join_pem(read.certificate), read.key, read.ca)
    except ClusterApiError as exc:
        if exc.status != 400:
            raise
        return status | {"message": f"the cluster refused Secret {name}: {exc.body.get('message', exc)}"}
    await post_event(kube, body, "Normal", brought.reason,
                     f"{brought.serves} the certificate of Secret {name} (valid until "
                     f"{checked.not_after.isoformat()})")
    return status | {"changed": True}


def _previous_message(body: dict[str, Any], brought: Brought) -> str | None:
    previous = ((body.get("status") or {}).get("certificatesStatus") or {}).get(brought.status_key) or {}
    return previous.get("message") if isinstance(previous, dict) else None


def _fingerprint(chain: str) -> str:
    """SHA-256 of the served certificate chain's text, short: which certificate is in place."""
    return hashlib.sha256(chain.encode()).hexdigest()[:16]
