"""Who is calling: the cluster's admin (the bootstrap credentials) or one of the cluster's users,
checked against salted scrypt hashes (PBKDF2 hashes written by older versions are still read), with
a small cache so a busy client does not pay the hash on every request."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

from recluster.node.records import ClusterState
from recluster.node.users import management_of

# scrypt at one of OWASP's recommended settings (N=2^14, r=8, p=5: 16 MiB, ~50 ms here): a node pod
# must not spend 128 MiB on one login
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 5
SCRYPT_MAXMEM = 64 * 1024 * 1024
PBKDF2_ITERATIONS = 100_000  # what older versions wrote; still verified


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM).hex()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt}${digest}"


def verify_password(password: str, stored: str) -> bool:
    parts = stored.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            candidate = hashlib.scrypt(password.encode(), salt=parts[4].encode(), n=n, r=r, p=p,
                                       maxmem=SCRYPT_MAXMEM).hex()
            return hmac.compare_digest(candidate, parts[5])
        if parts[0] == "pbkdf2-sha256" and len(parts) == 4:
            candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), parts[2].encode(),
                                            int(parts[1])).hex()
            return hmac.compare_digest(candidate, parts[3])
    except ValueError:
        return False
    return False


def acl_password(password: str) -> str:
    """What Redis ACLs check a password against (`#<sha256 hex>` in ACL SETUSER)."""
    return hashlib.sha256(password.encode()).hexdigest()


class CredentialCheck:
    def __init__(self) -> None:
        self._ok: set[tuple[str, str]] = set()

    async def _matches(self, password: str, stored: str) -> bool:
        key = (hashlib.sha256(password.encode()).hexdigest(), stored)
        if key in self._ok:
            return True
        # ~50 ms of hashing off the event loop (hashlib lets the GIL go): wrong passwords sent in a
        # loop must not stall the node's loops
        if await asyncio.to_thread(verify_password, password, stored):
            if len(self._ok) > 256:
                self._ok.clear()
            self._ok.add(key)
            return True
        return False

    async def management(self, username: str, password: str, state: ClusterState) -> str | None:
        """The caller's management level ('admin' for the cluster's admin; a user's strongest role),
        or None when the credentials are not the admin's or a user's. A user logs in with its name
        or its email."""
        cluster = state.cluster
        if hmac.compare_digest(username.encode(), cluster.username.encode()):
            if await self._matches(password, cluster.password_hash):
                return "admin"
            switching = bool(cluster.previous_password_hash) and time.time() < cluster.previous_password_until
            previous_ok = switching and await self._matches(password, cluster.previous_password_hash)
            return "admin" if previous_ok else None
        for user in state.users.values():
            if username and username in (user.name, user.email):
                return management_of(user, state.roles) if await self._matches(password, user.password_hash) \
                    else None
        return None
