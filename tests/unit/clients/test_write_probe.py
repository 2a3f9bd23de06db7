"""The failover probe counts only writes a new master took: a run where only the old master (its
hand-off) or a replica answered has no failover time. Pure: the writes are made up here."""

from __future__ import annotations

import pytest

from recluster.clients.write_probe import FailoverWrites, Server, Taken, error_text

pytestmark = pytest.mark.unit

OLD = Server("a" * 40, "master", "198.18.8.2")
NEW = Server("b" * 40, "master", "198.18.9.2")


def taken(n: int, at: float, server: Server) -> Taken:
    return Taken(f"probe-{n}", at, server)


def test_writes_of_the_leaving_master_do_not_end_the_failover() -> None:
    writes = FailoverWrites(OLD, started=100.0)
    writes.add(taken(0, 100.1, OLD))
    writes.add("ConnectionError: Connection refused")
    writes.add(taken(1, 103.0, OLD))
    writes.add(taken(2, 103.5, Server("c" * 40, "slave", "198.18.10.2")))  # a replica never counts
    assert writes.first_new is None
    assert writes.first_any is not None and writes.first_any.at == 100.1
    assert writes.last_old is not None and writes.last_old.at == 103.0
    writes.add(taken(3, 110.0, NEW))
    writes.add(taken(4, 110.1, OLD))  # the old master still answering after the new one took over
    assert writes.first_new is not None and writes.first_new.server == NEW
    assert writes.first_new.at - writes.started == pytest.approx(10.0)
    assert writes.longest_gap == pytest.approx(6.5)  # 103.5 -> 110.0; gaps after first_new not counted
    assert writes.last_old.at == 110.1 and len(writes.old_writes) == 3 and writes.old_after_new == 1
    assert writes.errors == {"ConnectionError: Connection refused": 1}
    assert "1 x ConnectionError" in writes.summary()


def test_a_restarted_master_is_a_new_server() -> None:
    writes = FailoverWrites(OLD, started=0.0)
    writes.add(taken(0, 5.0, Server("d" * 40, "master", OLD.addr)))
    assert writes.first_new is not None


def test_only_the_old_master_answering_gives_no_failover_time() -> None:
    writes = FailoverWrites(OLD, started=0.0)
    for n in range(100):
        writes.add(taken(n, 0.05 * n, OLD))
    assert writes.first_new is None and writes.since(writes.first_new) is None
    assert writes.since(writes.first_any) == 0.0
    assert "first write on the new master none" in writes.summary()


def test_failed_writes_count_together_whatever_their_key() -> None:
    import redis

    one = error_text(redis.ResponseError("Command # 1 (SET probe-1 probe-1) of pipeline caused error: "
                                         "READONLY You can't write against a read only replica."))
    two = error_text(redis.ResponseError("Command # 1 (SET probe-2 probe-2) of pipeline caused error: "
                                         "READONLY You can't write against a read only replica."))
    assert one == two and one.startswith("ResponseError: READONLY")
