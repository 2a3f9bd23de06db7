"""Console sessions, in memory only: a random id in an HttpOnly, Secure, SameSite=Strict cookie; the
credentials stay on the server (never in the page, a URL or a log); a CSRF token per session."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

COOKIE = "__Host-recluster-console"
IDLE_S = 30 * 60


@dataclass
class Session:
    username: str
    password: str = field(repr=False)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = 0.0


class SessionStore:
    def __init__(self, idle_s: float = IDLE_S, limit: int = 1000) -> None:
        self.idle_s = idle_s
        self.limit = limit
        self._sessions: dict[str, Session] = {}

    def create(self, username: str, password: str, now: float) -> tuple[str, Session]:
        self.expire(now)
        if len(self._sessions) >= self.limit:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].last_seen)
            del self._sessions[oldest]
        sid = secrets.token_urlsafe(32)
        session = Session(username, password, last_seen=now)
        self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None, now: float) -> Session | None:
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        if now - session.last_seen > self.idle_s:
            del self._sessions[sid]
            return None
        session.last_seen = now
        return session

    def newest(self, now: float) -> Session | None:
        """The most recently seen live session (without counting this as activity), or None."""
        self.expire(now)
        return max(self._sessions.values(), key=lambda s: s.last_seen, default=None)

    def drop(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def expire(self, now: float) -> None:
        for sid in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)


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
