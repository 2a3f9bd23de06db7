"""The node daemon's loop watch reports a blocked event loop (with how late it ran) and nothing while
the loop keeps up."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from recluster.node.loop_watch import LoopWatch

pytestmark = pytest.mark.unit


async def _watch_while(block_s: float, warn_after: float) -> LoopWatch:
    watch = LoopWatch(interval=0.05, warn_after=warn_after)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.2)
    time.sleep(block_s)  # noqa: ASYNC251 - what a blocking call in a handler does to everyone else
    await asyncio.sleep(0.2)
    task.cancel()
    return watch


def test_a_blocked_loop_is_reported_with_how_late(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="recluster.node.loop_watch"):
        watch = asyncio.run(_watch_while(0.6, warn_after=0.3))
    assert watch.worst >= 0.5
    assert any("the event loop ran" in r.getMessage() and "late" in r.getMessage() for r in caplog.records)


def test_a_loop_that_keeps_up_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="recluster.node.loop_watch"):
        # (a loaded test machine may be late by a little; a stall is a second)
        watch = asyncio.run(_watch_while(0.0, warn_after=1.0))
    assert watch.worst < 1.0
    assert not caplog.records
