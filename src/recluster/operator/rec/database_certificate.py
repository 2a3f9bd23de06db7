"""The databases' certificate of a REC: `spec.certificates.proxyCertificateSecretName` kept in the
cluster (PUT /v1/cluster/update_cert, or DELETE when the field is removed), and the CA a database
client needs published as the ConfigMap `<rec>-database-ca` (key `ca.crt`, owned by the REC) that a
platform can mount. A Secret that cannot be served (the cluster's check, recluster.certificates) is
named in the status and an event; the cluster keeps serving what it served."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from recluster.api.rec import RedisEnterpriseCluster
from recluster.certificates import CertificateRefused, check_served_certificate, earliest_expiry, join_pem
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


def read_secret(secret: dict[str, Any] | None, name: str) -> SecretCertificate | str:
    """The certificate of a user's Secret (pure): Redis Enterprise's keys `certificate` and `key`
    (`name`, when there, must be `proxy`), or kubernetes.io/tls's `tls.crt` and `tls.key` with
    `ca.crt` (cert-manager). `ca.crt` is read beside either. A str: what is wrong, for the status."""
    field = "spec.certificates.proxyCertificateSecretName"
    if secret is None:
        return f"{field}: Secret {name} does not exist"
    label = secret_value(secret, "name")
    if label is not None and label.strip() not in ("", "proxy"):
        return f"{field}: Secret {name} is for the {label.strip()!r} certificate (key `name`), not 'proxy'"
    for cert_key, key_key in (("certificate", "key"), ("tls.crt", "tls.key")):
        certificate, key = secret_value(secret, cert_key), secret_value(secret, key_key)
        if certificate and key:
            return SecretCertificate(certificate, key, secret_value(secret, CA_KEY) or "")
    return f"{field}: Secret {name} has neither `certificate` and `key` nor `tls.crt` and `tls.key`"


def build_ca_config_map(rec: RedisEnterpriseCluster, ca_pem: str) -> dict[str, Any]:
    """ConfigMap `<rec>-database-ca`: what a client of the REC's TLS databases trusts (pure)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": object_meta(rec, database_ca_name(rec)),
            "data": {CA_KEY: ca_pem}}


async def keep_database_certificate(
    kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, view: ClusterView, client: ClusterClient
) -> dict[str, Any] | None:
    """`status.certificatesStatus` after this pass (None: no ready node to ask, the old one stays)."""
    via = next((m for m in view.members if m.ready and not m.deleting and m.ip), None)
    if via is None:
        return None
    name = rec.spec.certificates.proxy_certificate_secret_name if rec.spec.certificates else None
    try:
        async with client.api(via) as api:
            current = await api.certificates()
            served = str(current.get("proxy_user_cert") or "")
            proxy: dict[str, Any] = {"source": "cluster"}
            if name:
                proxy = await _follow_secret(kube, body, rec, api, name, served)
                if proxy.get("message") and proxy["message"] != _previous_message(body):
                    await post_event(kube, body, "Warning", "DatabaseCertificate", proxy["message"][:500])
            elif served:
                await api.delete_cert("proxy")
                await post_event(kube, body, "Normal", "DatabaseCertificate",
                                 "the databases serve certificates of the cluster's own CA again")
            if proxy.get("changed") or (served and not name):
                current = await api.certificates()
    except (httpx.HTTPError, ClusterApiError, OSError) as exc:  # no majority, a node restarting: next time
        log.warning("cluster %s/%s: cannot keep the databases' certificate: %s", rec.namespace, rec.name, exc)
        return None
    proxy.pop("changed", None)
    ca_pem = str(current.get("proxy_cert") or "")
    if ca_pem:
        await kube.apply(build_ca_config_map(rec, ca_pem))
    expiry = earliest_expiry(ca_pem)
    if expiry is not None:  # when the CA a client trusts runs out (the database CA: rotate before)
        proxy["caNotAfter"] = expiry.isoformat()
    return {"proxy": proxy}


async def _follow_secret(kube: Kube, body: dict[str, Any], rec: RedisEnterpriseCluster, api: Any, name: str,
                         served: str) -> dict[str, Any]:
    read = read_secret(await kube.get("v1", "Secret", rec.namespace, name), name)
    status: dict[str, Any] = {"source": "secret", "secretName": name}
    if isinstance(read, str):
        return status | {"message": read}
    try:
        checked = check_served_certificate(read.certificate, read.key, read.ca)
    except CertificateRefused as exc:
        return status | {"message": f"spec.certificates.proxyCertificateSecretName: Secret {name} cannot be "
                                    f"served: {exc}"}
    status |= {"notAfter": checked.not_after.isoformat(), "fingerprint": _fingerprint(checked.chain)}
    if checked.chain == served:
        return status
    try:
        await api.update_cert("proxy", join_pem(read.certificate), read.key, read.ca)
    except ClusterApiError as exc:
        if exc.status != 400:
            raise
        return status | {"message": f"the cluster refused Secret {name}: {exc.body.get('message', exc)}"}
    await post_event(kube, body, "Normal", "DatabaseCertificate",
                     f"the databases serve the certificate of Secret {name} (valid until "
                     f"{checked.not_after.isoformat()})")
    return status | {"changed": True}


def _previous_message(body: dict[str, Any]) -> str | None:
    previous = ((body.get("status") or {}).get("certificatesStatus") or {}).get("proxy") or {}
    return previous.get("message") if isinstance(previous, dict) else None


def _fingerprint(chain: str) -> str:
    """SHA-256 of the served certificate chain's text, short: which certificate is in place."""
    return hashlib.sha256(chain.encode()).hexdigest()[:16]
