"""The cluster's admin credentials: stored as a salted PBKDF2 hash, checked with a small cache so a
busy client does not pay the hash on every request."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ITERATIONS = 100_000


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), ITERATIONS).hex()
    return f"pbkdf2-sha256${ITERATIONS}${salt}${digest}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations)).hex()
    return hmac.compare_digest(candidate, digest)


class CredentialCheck:
    def __init__(self) -> None:
        self._ok: set[tuple[str, str]] = set()

    def check(self, username: str, password: str, expected_user: str, stored: str) -> bool:
        if not hmac.compare_digest(username.encode(), expected_user.encode()):
            return False
        key = (hashlib.sha256(password.encode()).hexdigest(), stored)
        if key in self._ok:
            return True
        if verify_password(password, stored):
            if len(self._ok) > 64:
                self._ok.clear()
            self._ok.add(key)
            return True
        return False
