"""The users' database passwords in the form Redis ACLs check (SHA-256), sealed before they enter the
cluster state: AES-GCM with a key derived (HKDF-SHA256) from the cluster's secret, which every node
holds and the state never does. A copy of the state alone (a dump, a backup) gives no password hash."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_AAD = b"recluster redis acl password"


class AclSecrets:
    """`info` and `aad` keep each purpose's sealed values apart (a backup key sealed for the CCS is not
    an ACL password hash): the defaults are the ACL passwords'."""

    def __init__(self, cluster_secret: str, info: bytes = b"redis acl password v1",
                 aad: bytes = _AAD) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"recluster-acl",
                   info=info).derive(cluster_secret.encode())
        self._aead = AESGCM(key)
        self._aad = aad

    def seal(self, password_sha256: str) -> str:
        nonce = os.urandom(12)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, password_sha256.encode(), self._aad)
        return base64.b64encode(sealed).decode()

    def open(self, sealed: str) -> str | None:
        """The SHA-256 hex sealed in `sealed`, or None when it is not one of this cluster's."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            if raw[:1] != _VERSION or len(raw) < 1 + 12 + 16:
                return None
            return self._aead.decrypt(raw[1:13], raw[13:], self._aad).decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None


def backup_key_seal(cluster_secret: str) -> AclSecrets:
    """The sealing of the S3 secret keys of scheduled backups (`backup_location`) in the cluster state."""
    return AclSecrets(cluster_secret, b"backup location key v1", b"recluster backup location key")
