"""The failover probe of the REDB tests counts only writes a new master took: a run where only the
old master (its hand-off) or a replica answered must fail. Pure: the writes are made up here (unit,
no cluster; next to the helpers it checks)."""

from __future__ import annotations

import time

import pytest
from tests.e2e.redb import support
from tests.e2e.redb.support import FailoverWrites, Server, Taken, write_until_new_master

pytestmark = pytest.mark.unit

OLD = Server("a" * 40, "master", "rec-0")
NEW = Server("b" * 40, "master", "rec-1")


def taken(n: int, at: float, server: Server) -> Taken:
    return Taken(f"probe-{n}", at, server)


def test_writes_of_the_leaving_master_do_not_end_the_failover() -> None:
    writes = FailoverWrites(OLD, started=100.0)
    writes.add(taken(0, 100.1, OLD))
    writes.add("ConnectionError: Connection refused")
    writes.add(taken(1, 103.0, OLD))
    writes.add(taken(2, 103.5, Server("c" * 40, "slave", "rec-2")))  # a replica never counts
    assert writes.first_new is None
    assert writes.first_any is not None and writes.first_any.at == 100.1
    assert writes.last_old is not None and writes.last_old.at == 103.0
    writes.add(taken(3, 110.0, NEW))
    writes.add(taken(4, 110.1, OLD))  # the old master still answering after the new one took over
    assert writes.first_new is not None and writes.first_new.server == NEW
    assert writes.first_new.at - writes.started == pytest.approx(10.0)
    assert writes.longest_gap == pytest.approx(6.5)  # 103.5 -> 110.0; gaps after first_new not counted
    assert writes.last_old.at == 110.1 and writes.old_writes == 3
    assert writes.errors == {"ConnectionError: Connection refused": 1}
    assert "1 x ConnectionError" in writes.summary()


def test_a_restarted_master_is_a_new_server() -> None:
    writes = FailoverWrites(OLD, started=0.0)
    writes.add(taken(0, 5.0, Server("d" * 40, "master", OLD.pod)))
    assert writes.first_new is not None


def test_the_probe_fails_when_only_the_old_master_takes_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(n) for n in range(1000))
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(time, "sleep", lambda _: None)
    monkeypatch.setattr(support, "write_on", lambda *a, **k: taken(0, 1.0, OLD))
    with pytest.raises(pytest.fail.Exception, match="no write taken by a new master"):
        write_until_new_master("198.18.0.1", 6379, None, OLD, started=0.0, timeout=10)


def test_the_probe_ends_at_the_new_master(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([None, taken(1, 2.0, OLD), taken(2, 4.0, NEW)])
    monkeypatch.setattr(time, "sleep", lambda _: None)
    monkeypatch.setattr(support, "write_on", lambda *a, **k: next(answers))
    writes = write_until_new_master("198.18.0.1", 6379, None, OLD, started=0.0, timeout=1e9)
    assert writes.first_new is not None and writes.first_new.server == NEW
    assert writes.since(writes.first_any) == "2.00 s" and writes.since(writes.first_new) == "4.00 s"
