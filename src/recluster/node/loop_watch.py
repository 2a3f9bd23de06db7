"""How late the node daemon's event loop runs what is due: the REST API, the node loop and the leader
loop share it, so a step that blocks it stalls all three (a forwarded write once missed the leader's
3 s connect timeout on a loaded machine). The watch sleeps a fixed interval and logs a warning when it
woke much later than asked, with how late and the worst lag so far."""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)

INTERVAL_S = 0.25
WARN_AFTER_S = 1.0  # later than this is a stall worth a line in the log


class LoopWatch:
    def __init__(self, interval: float = INTERVAL_S, warn_after: float = WARN_AFTER_S) -> None:
        self.interval, self.warn_after = interval, warn_after
        self.worst = 0.0  # the longest lag seen, seconds

    def observe(self, lag: float) -> bool:
        """Record one lag; whether it is a stall to report (pure)."""
        self.worst = max(self.worst, lag)
        return lag >= self.warn_after

    async def run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            lag = time.monotonic() - asked - self.interval
            if self.observe(lag):
                log.warning("the event loop ran %.1f s late (the REST API, node loop and leader loop "
                            "waited; worst so far %.1f s)", lag, self.worst)
