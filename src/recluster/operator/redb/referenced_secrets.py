"""The Secrets a REDB's pass reads: the database Secret with the default user's password (made, with
a generated password, when it is missing), the client certificates `clientAuthenticationCertificates`
names, and the backup's S3 credentials."""

from __future__ import annotations

import secrets
from typing import Any

from recluster.api.redb import RedisEnterpriseDatabase
from recluster.clients.kubernetes import Kube
from recluster.operator.redb.secret import CLIENT_CERT_KEY, build_new_secret, secret_value

PASSWORD_BYTES = 24  # token_urlsafe(24): 32 characters


async def ensure_secret(
    kube: Kube, redb: RedisEnterpriseDatabase
) -> tuple[str | None, dict[str, Any] | None]:
    """The default user's password and the secret holding it: from the secret, or a new secret with
    a generated one. "" means no authentication (a user's secret with an empty or no password)."""
    if not redb.spec.default_user:
        return None, None
    secret = await kube.get("v1", "Secret", redb.metadata.namespace, redb.secret_name)
    if secret is None:
        created = await kube.apply(build_new_secret(redb, secrets.token_urlsafe(PASSWORD_BYTES)))
        return secret_value(created, "password"), created
    return secret_value(secret, "password") or "", secret


async def read_backup_secret(kube: Kube, redb: RedisEnterpriseDatabase) -> dict[str, Any] | None:
    """The Secret `backup.s3.awsSecretName` names (None: none named, or missing)."""
    backup = redb.spec.backup
    if backup is None or backup.s3 is None:
        return None
    return await kube.get("v1", "Secret", redb.metadata.namespace, backup.s3.aws_secret_name)


def decoded_secret(secret: dict[str, Any] | None) -> dict[str, str] | None:
    if secret is None:
        return None
    return {key: value for key in (secret.get("data") or {}) if (value := secret_value(secret, key))}


async def client_certificates(kube: Kube, redb: RedisEnterpriseDatabase) -> tuple[list[str], str]:
    """The PEM certificates of the Secrets `clientAuthenticationCertificates` names (key `cert`), and
    what is missing ("" when nothing is)."""
    certs: list[str] = []
    for name in redb.spec.client_authentication_certificates or []:
        secret = await kube.get("v1", "Secret", redb.metadata.namespace, name)
        cert = secret_value(secret, CLIENT_CERT_KEY) if secret is not None else None
        if not cert:
            where = "does not exist" if secret is None else f"has no '{CLIENT_CERT_KEY}' key"
            return [], (f"waiting for the client certificate: Secret {name} {where} "
                        "(clientAuthenticationCertificates)")
        certs.append(cert)
    return certs, ""
