"""The per-object loops of both kinds: a failure is retried (backoff capped), a wake-up cuts the
wait short, None from the reconcile ends the loop; the registry starts a loop on the object's own
event only, wakes it on its children's, and stops them all."""

from __future__ import annotations

import asyncio

import pytest

from recluster.operator.loops import JITTER, MAX_BACKOFF, Loops, backoff, level_loop, spread

pytestmark = pytest.mark.unit


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(5) == backoff(50) == MAX_BACKOFF


async def test_failures_are_retried_on_wake_up_and_none_ends_the_loop() -> None:
    wake, called = asyncio.Event(), asyncio.Event()
    outcomes: list[float | Exception | None] = [RuntimeError("away"), ValueError("bad"), 3600.0, None]
    calls = 0

    async def reconcile() -> float | None:
        nonlocal calls
        outcome = outcomes[calls]
        calls += 1
        called.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    loop = asyncio.create_task(level_loop("Test", "test/one", reconcile, wake))
    for expected in (1, 2, 3):  # each wait (a backoff of seconds, then an hour) is cut short by a wake-up
        await asyncio.wait_for(called.wait(), timeout=2)
        called.clear()
        assert calls == expected and not loop.done()
        await asyncio.sleep(0.01)  # the loop is now waiting
        wake.set()
    await asyncio.wait_for(loop, timeout=2)
    assert calls == 4


async def test_cancel_stops_the_loop() -> None:
    async def reconcile() -> float | None:
        return 3600.0

    loop = asyncio.create_task(level_loop("Test", "test/two", reconcile, asyncio.Event()))
    await asyncio.sleep(0.05)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop


def test_waits_are_spread() -> None:
    waits = [spread(30.0) for _ in range(200)]
    assert all(30.0 * (1 - JITTER) <= wait <= 30.0 * (1 + JITTER) for wait in waits)
    assert len(set(waits)) > 1


async def test_a_wake_up_during_a_reconcile_that_found_the_object_gone_looks_again() -> None:
    wake = asyncio.Event()
    calls = 0

    async def reconcile() -> float | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            wake.set()  # the object is made anew while this pass reads it gone
        return None

    await asyncio.wait_for(level_loop("Test", "test/three", reconcile, wake), timeout=2)
    assert calls == 2


async def test_registry_starts_on_poke_wakes_on_children_and_stops() -> None:
    seen: list[tuple[str, str]] = []
    again = asyncio.Event()

    async def reconcile(namespace: str, name: str) -> float | None:
        seen.append((namespace, name))
        again.set()
        return None if name == "gone" else 3600.0

    loops = Loops("Test", "T", reconcile)
    assert not loops.wake("ns", "a")  # a child's event starts nothing
    loops.poke("ns", "a")
    await asyncio.wait_for(again.wait(), timeout=2)
    assert ("ns", "a") in loops and seen == [("ns", "a")]
    again.clear()
    assert loops.wake("ns", "a")
    await asyncio.wait_for(again.wait(), timeout=2)
    assert seen == [("ns", "a")] * 2
    again.clear()
    loops.poke("ns", "gone")
    await asyncio.wait_for(again.wait(), timeout=2)
    await asyncio.sleep(0.01)
    assert ("ns", "gone") not in loops  # None ended it and the registry forgot it
    await loops.stop()
    assert ("ns", "a") not in loops
