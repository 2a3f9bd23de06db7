"""Sessions (tokens every node of a cluster honours: sealed, expiring, ended everywhere by a
logout), CSRF and origin checks, and the ring buffers behind the charts and events."""

from __future__ import annotations

import asyncio
import base64

import pytest

from recluster.console.history import EventLog, StatsHistory
from recluster.console.sessions import (
    CLOCK_SKEW_S,
    IDLE_S,
    MAX_AGE_S,
    REFRESH_S,
    LocalRevocations,
    LoginThrottle,
    NoSessionKey,
    RevocationUnavailable,
    Session,
    SessionKeys,
    SessionTokens,
    csrf_ok,
    same_origin,
)

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def nodes(count: int = 2, secret: bytes = b"the-ccs-password", cluster: bytes = b"cluster.local") -> tuple[
        Clock, list[SessionTokens]]:
    """`count` nodes of one cluster: each derives its own keys from the shared secret; one record of
    logouts (the CCS, in the node) for all."""
    clock = Clock()
    logouts = LocalRevocations(clock)
    return clock, [node(SessionKeys(secret, cluster), logouts) for _ in range(count)]


def node(keys: SessionKeys, logouts: LocalRevocations) -> SessionTokens:
    return SessionTokens(lambda: keys, logouts)


def verify(tokens: SessionTokens, token: str | None, now: float) -> Session | None:
    return asyncio.run(tokens.verify(token, now))


def test_a_session_made_on_one_node_is_valid_on_another_with_the_same_csrf_token() -> None:
    clock, (a, b) = nodes()
    token, session = a.issue("admin", "pw", clock.now)
    on_b = verify(b, token, clock.now + 5)
    assert on_b is not None and (on_b.sid, on_b.username, on_b.password) == (session.sid, "admin", "pw")
    assert on_b.csrf == session.csrf and csrf_ok(on_b, session.csrf)


def test_the_credentials_are_sealed_not_readable_in_the_token() -> None:
    clock, (a,) = nodes(1)
    token, session = a.issue("admin@cluster", "hunter2-secret", clock.now)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"hunter2" not in raw and b"admin@cluster" not in raw
    assert "hunter2-secret" not in repr(session)
    assert a.issue("admin@cluster", "hunter2-secret", clock.now)[0] != token  # a fresh nonce each time


def test_forged_altered_or_foreign_tokens_are_refused() -> None:
    clock, (a,) = nodes(1)
    token, _ = a.issue("admin", "pw", clock.now)
    _, (other_cluster,) = nodes(1, secret=b"another-ccs-password")
    _, (same_secret_other_name,) = nodes(1, cluster=b"other.local")
    foreign, _ = other_cluster.issue("admin", "pw", clock.now)
    assert verify(a, foreign, clock.now) is None
    assert verify(same_secret_other_name, token, clock.now) is None
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for index in (0, 5, len(raw) // 2, len(raw) - 1):
        altered = bytearray(raw)
        altered[index] ^= 0x01
        assert verify(a, base64.urlsafe_b64encode(bytes(altered)).decode(), clock.now) is None, index
    for junk in (None, "", "x", "%%%", token[:-4], "A" * 5000):
        assert verify(a, junk, clock.now) is None


def test_a_token_expires_when_idle_and_after_its_maximum_age() -> None:
    clock, (a,) = nodes(1)
    token, session = a.issue("admin", "pw", clock.now)
    assert verify(a, token, clock.now + IDLE_S) is not None
    assert verify(a, token, clock.now + IDLE_S + 1) is None
    # kept alive: every request after REFRESH_S gets a new cookie, whose idle clock starts again
    now = clock.now
    while now < clock.now + MAX_AGE_S - 10:
        now = min(now + IDLE_S - 1, clock.now + MAX_AGE_S - 10)
        live = verify(a, token, now)
        assert live is not None
        token = a.refreshed(live, now) or token
    assert verify(a, token, now + 10) is not None
    assert verify(a, token, now + 11) is None  # 12 hours after the login, however active
    assert a.refreshed(session, clock.now + REFRESH_S - 1) is None
    assert verify(a, token, now - IDLE_S - CLOCK_SKEW_S - 1) is None  # issued in the future


def test_a_logout_on_one_node_ends_the_session_on_every_node() -> None:
    clock, (a, b, c) = nodes(3)
    token, _ = a.issue("admin", "pw", clock.now)
    other, _ = a.issue("admin", "pw", clock.now)
    session = verify(b, token, clock.now)
    assert session is not None
    asyncio.run(b.end(session))
    assert [verify(n, token, clock.now + 1) for n in (a, b, c)] == [None, None, None]
    assert all(verify(n, other, clock.now + 1) is not None for n in (a, b, c))  # only that one


def test_no_cluster_no_sessions() -> None:
    clock = Clock()
    tokens = SessionTokens(lambda: None, LocalRevocations(clock))
    with pytest.raises(NoSessionKey):
        tokens.issue("admin", "pw", clock.now)
    assert verify(tokens, "anything", clock.now) is None


def test_local_logouts_are_forgotten_once_their_tokens_expired() -> None:
    clock = Clock()
    logouts = LocalRevocations(clock, limit=2)
    asyncio.run(logouts.revoke("a", clock.now + 10))
    asyncio.run(logouts.revoke("b", clock.now + 10))
    with pytest.raises(RevocationUnavailable):
        asyncio.run(logouts.revoke("c", clock.now + 10))
    clock.now += 11
    asyncio.run(logouts.revoke("c", clock.now + 10))
    assert not asyncio.run(logouts.revoked("a")) and asyncio.run(logouts.revoked("c"))


def test_csrf_token_and_origin() -> None:
    clock, (a,) = nodes(1)
    _, session = a.issue("a", "p", clock.now)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "x" + session.csrf)
    _, another = a.issue("a", "p", clock.now)
    assert not csrf_ok(session, another.csrf)
    assert same_origin("https://127.0.0.11:8443", "127.0.0.11:8443")
    assert not same_origin("https://evil.example", "127.0.0.11:8443")
    assert not same_origin("http://127.0.0.11:8443", "127.0.0.11:8443")
    assert same_origin(None, "127.0.0.11:8443")


def test_stats_history_keeps_the_last_samples_at_most_one_per_period() -> None:
    history = StatsHistory(size=3, every_s=2.0)
    assert history.add(1, 0.0, 10.0, 1.0)
    assert not history.add(1, 1.0, 11.0, 1.0)  # too soon
    for t in (2.0, 4.0, 6.0):
        assert history.add(1, t, t * 10, t)
    assert history.memory(1) == [(2.0, 20.0), (4.0, 40.0), (6.0, 60.0)]
    assert history.ops(1) == [(2.0, 2.0), (4.0, 4.0), (6.0, 6.0)]
    history.add(2, 0.0, 1.0, 1.0)
    history.keep_only([2])
    assert history.memory(1) == [] and history.memory(2) == [(0.0, 1.0)]


def test_event_log_is_bounded() -> None:
    log = EventLog(size=2)
    log.add("t1", ["a", "b"])
    log.add("t2", ["c"])
    assert log.recent() == [{"time": "t1", "text": "b"}, {"time": "t2", "text": "c"}]


def test_wrong_logins_are_throttled_per_client() -> None:
    throttle = LoginThrottle(limit=3, window_s=60.0)
    for t in (0.0, 1.0, 2.0):
        assert throttle.wait_s("10.0.0.1", t) == 0.0
        throttle.failed("10.0.0.1", t)
    assert throttle.wait_s("10.0.0.1", 3.0) == 57.0
    assert throttle.wait_s("10.0.0.2", 3.0) == 0.0  # another client is not held
    assert throttle.wait_s("10.0.0.1", 60.5) == 0.0  # the first failure left the window
    throttle.succeeded("10.0.0.1")
    assert throttle.wait_s("10.0.0.1", 61.0) == 0.0


def test_throttle_remembers_a_bounded_number_of_clients() -> None:
    throttle = LoginThrottle(limit=1, clients=2)
    for client in ("a", "b", "c"):
        throttle.failed(client, 0.0)
    assert throttle.wait_s("a", 1.0) == 0.0 and throttle.wait_s("c", 1.0) > 0
