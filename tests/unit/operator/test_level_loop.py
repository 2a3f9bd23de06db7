"""The per-object loop: a failure is retried (backoff capped), a wake-up cuts the wait short, and
None from the reconcile ends the loop."""

from __future__ import annotations

import asyncio

import pytest

from recluster.operator.level_loop import MAX_BACKOFF, backoff, level_loop

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
