"""Console sessions that every node of the cluster honours, so the `rec-ui` Service may send each
request of a browser to another node: the session is a token in an HttpOnly, Secure, SameSite=Strict
cookie, sealed (AES-256-GCM: authenticated and encrypted) with a key derived from a secret that every
node of the cluster holds and nobody else does. The credentials inside stay unreadable to the browser
and to whoever steals the cookie; they never appear in the page, a URL or a log. A token expires after
`IDLE_S` without a request and `MAX_AGE_S` after the login, and a logout is recorded for the whole
cluster (`Revocations`), so the token is refused everywhere from then on. The CSRF token is derived
from the session's id with another key, so every node computes the same one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = "__Host-recluster-console"
IDLE_S = 30 * 60  # without a request, then logged out
MAX_AGE_S = 12 * 3600  # after the login, whatever happens
REFRESH_S = 60  # an active session's cookie is re-issued this often (its idle clock restarts)
CLOCK_SKEW_S = 60  # how far ahead of this node's clock another node's may be
MAX_TOKEN = 3800  # a cookie (name, value, attributes) must stay under the browsers' 4096 bytes
_VERSION = b"\x01"
_AAD = b"recluster console session"


@dataclass
class Session:
    sid: str
    username: str
    password: str = field(repr=False)
    issued: float = 0.0  # the login
    seen: float = 0.0  # the last time its cookie was (re-)issued
    csrf: str = ""


def _derive(secret: bytes, purpose: bytes, context: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"recluster-console:" + context,
                info=purpose).derive(secret)


class SessionKeys:
    """The keys of one cluster's console sessions, derived (HKDF-SHA256, one key per purpose) from a
    secret every node of the cluster holds; `context` (the cluster's name) separates clusters that
    would share a secret. The secret itself is never used as a key."""

    def __init__(self, secret: bytes, context: bytes = b"") -> None:
        self._seal = AESGCM(_derive(secret, b"session token v1", context))
        self._csrf = _derive(secret, b"csrf token v1", context)

    def seal(self, session: Session) -> str:
        body = json.dumps({"s": session.sid, "u": session.username, "p": session.password,
                           "i": session.issued, "t": session.seen}, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        sealed = _VERSION + nonce + self._seal.encrypt(nonce, body, _VERSION + _AAD)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(self, token: str) -> Session | None:
        """The session in `token`, or None when it is not one of ours (forged, altered, another
        cluster's, another version's): nothing tells which."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + 12 + 16 or raw[:1] != _VERSION:
            return None
        try:
            body = json.loads(self._seal.decrypt(raw[1:13], raw[13:], _VERSION + _AAD))
            session = Session(str(body["s"]), str(body["u"]), str(body["p"]),
                              issued=float(body["i"]), seen=float(body["t"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        session.csrf = self.csrf(session.sid)
        return session

    def csrf(self, sid: str) -> str:
        mac = hmac.new(self._csrf, sid.encode(), sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class RevocationUnavailable(Exception):
    """The record of logouts cannot be read or written now (the message says why)."""


class Revocations(Protocol):
    """Logouts, as every node that may see the token knows them."""

    async def revoke(self, sid: str, until: float) -> None:
        """Record that `sid` has ended (forgettable after `until`), or raise RevocationUnavailable."""

    async def revoked(self, sid: str) -> bool:
        """Whether `sid` has ended, or raise RevocationUnavailable."""


class LocalRevocations:
    """Logouts in this process's memory: for a console no other node serves (the unit tests, a node
    that is in no cluster). Bounded: ended sessions are forgotten once their tokens have expired."""

    def __init__(self, clock: Callable[[], float], limit: int = 10000) -> None:
        self.clock, self.limit = clock, limit
        self._ended: dict[str, float] = {}

    async def revoke(self, sid: str, until: float) -> None:
        now = self.clock()
        self._ended = {k: v for k, v in self._ended.items() if v > now}
        if len(self._ended) >= self.limit:
            raise RevocationUnavailable(f"{self.limit} logouts are remembered already")
        self._ended[sid] = until

    async def revoked(self, sid: str) -> bool:
        return self._ended.get(sid, 0.0) > self.clock()


class NoSessionKey(Exception):
    """No key to seal sessions with: the node is in no cluster yet."""


class SessionTokens:
    """Issue, check, re-issue and end sessions. `keys` gives the cluster's keys (None before the node
    is in a cluster); `revocations` the cluster's record of logouts."""

    def __init__(self, keys: Callable[[], SessionKeys | None], revocations: Revocations,
                 idle_s: float = IDLE_S, max_age_s: float = MAX_AGE_S, refresh_s: float = REFRESH_S) -> None:
        self.keys, self.revocations = keys, revocations
        self.idle_s, self.max_age_s, self.refresh_s = idle_s, max_age_s, refresh_s

    @classmethod
    def local(cls, clock: Callable[[], float]) -> SessionTokens:
        """Sessions only this process honours: a random key, logouts in memory."""
        keys = SessionKeys(secrets.token_bytes(32))
        return cls(lambda: keys, LocalRevocations(clock))

    def _keys(self) -> SessionKeys:
        keys = self.keys()
        if keys is None:
            raise NoSessionKey("this node is not in a cluster yet")
        return keys

    def issue(self, username: str, password: str, now: float) -> tuple[str, Session]:
        """(the cookie's value, the session); NoSessionKey before the node is in a cluster,
        ValueError when the credentials do not fit in a cookie."""
        keys = self._keys()
        session = Session(secrets.token_urlsafe(18), username, password, issued=now, seen=now)
        session.csrf = keys.csrf(session.sid)
        token = keys.seal(session)
        if len(token) > MAX_TOKEN:
            raise ValueError("the username and password are too long to keep in a session cookie")
        return token, session

    async def verify(self, token: str | None, now: float) -> Session | None:
        """The live session `token` holds, or None (none, not ours, expired, logged out). Raises
        RevocationUnavailable when the record of logouts cannot be read: not a verdict either way."""
        keys = self.keys()
        if not token or keys is None or len(token) > MAX_TOKEN:
            return None
        session = keys.open(token)
        if session is None:
            return None
        if not (now - self.idle_s <= session.seen <= now + CLOCK_SKEW_S):
            return None
        if not (now - self.max_age_s <= session.issued <= session.seen):
            return None
        if await self.revocations.revoked(session.sid):
            return None
        return session

    def refreshed(self, session: Session, now: float) -> str | None:
        """A new cookie value for an active session whose cookie is older than `refresh_s` (its idle
        clock starts again), else None."""
        if now - session.seen < self.refresh_s:
            return None
        session.seen = now
        return self._keys().seal(session)

    def with_password(self, session: Session, password: str, now: float) -> str:
        """The session's cookie value after its user changed the password: the same session (id,
        login time, CSRF token), now calling the REST API with the new password."""
        session.password, session.seen = password, now
        token = self._keys().seal(session)
        if len(token) > MAX_TOKEN:
            raise ValueError("the username and password are too long to keep in a session cookie")
        return token

    async def end(self, session: Session) -> None:
        """Log out everywhere (RevocationUnavailable when the cluster cannot record it)."""
        await self.revocations.revoke(session.sid, session.issued + self.max_age_s + CLOCK_SKEW_S)


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), (token or "").encode())


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser's Origin (sent on every POST/PUT/DELETE) must be this console's own https origin."""
    if origin is None:
        return True  # not a browser's cross-site request (browsers always send Origin on these)
    return bool(host) and origin == f"https://{host}"


class LoginThrottle:
    """At most `limit` failed logins per client address in `window_s`; then it waits (each check of a
    wrong password costs the node a PBKDF2 hash, and guessing must stay slow)."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, clients: int = 10000) -> None:
        self.limit, self.window_s, self.clients = limit, window_s, clients
        self._failures: dict[str, list[float]] = {}

    def wait_s(self, client: str, now: float) -> float:
        recent = [t for t in self._failures.get(client, []) if now - t < self.window_s]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return self.window_s - (now - recent[-self.limit]) if len(recent) >= self.limit else 0.0

    def failed(self, client: str, now: float) -> None:
        if client not in self._failures and len(self._failures) >= self.clients:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(client, []).append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
