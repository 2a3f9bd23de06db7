"""Sessions, CSRF and origin checks, and the ring buffers behind the charts and events."""

from __future__ import annotations

import pytest

from recluster.console.history import EventLog, StatsHistory
from recluster.console.sessions import LoginThrottle, SessionStore, csrf_ok, same_origin

pytestmark = pytest.mark.unit


def test_sessions_expire_when_idle_and_can_be_dropped() -> None:
    store = SessionStore(idle_s=60)
    sid, session = store.create("admin", "pw", now=0.0)
    assert store.get(sid, 30.0) is session
    assert store.get(sid, 80.0) is session  # last seen at 30
    assert store.get(sid, 141.0) is None and len(store) == 0
    sid, _ = store.create("admin", "pw", now=200.0)
    store.drop(sid)
    assert store.get(sid, 200.0) is None
    assert store.get(None, 0.0) is None and store.get("forged", 0.0) is None


def test_newest_session_does_not_count_as_activity() -> None:
    store = SessionStore(idle_s=60)
    store.create("a", "p", now=0.0)
    _, later = store.create("b", "p", now=10.0)
    assert store.newest(50.0) is later and later.last_seen == 10.0
    assert store.newest(71.0) is None and len(store) == 0


def test_the_password_is_never_in_a_sessions_repr() -> None:
    _, session = SessionStore().create("admin", "hunter2-secret", now=0.0)
    assert "hunter2-secret" not in repr(session)


def test_session_limit_drops_the_oldest() -> None:
    store = SessionStore(limit=2)
    first, _ = store.create("a", "p", 1.0)
    store.create("a", "p", 2.0)
    store.create("a", "p", 3.0)
    assert len(store) == 2 and store.get(first, 3.0) is None


def test_csrf_token_and_origin() -> None:
    _, session = SessionStore().create("a", "p", 0.0)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "x" + session.csrf)
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
