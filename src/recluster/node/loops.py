"""The passes of the node's control loops (node, leader, failover watch): one shape for all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from recluster.node.ccs import NoQuorum

log = logging.getLogger(__name__)


async def one_pass(what: str, step: Callable[[], Awaitable[object]]) -> None:
    """Run one pass. What a cluster in motion raises (a peer gone, no quorum for a moment) is logged
    in one line and the next pass tries again; anything else is logged with its traceback."""
    try:
        await step()
    except asyncio.CancelledError:
        raise
    except NoQuorum as exc:
        log.info("%s: %s", what, exc.message)
    except (RedisError, OSError, TimeoutError) as exc:
        log.info("%s: %s: %s", what, type(exc).__name__, exc)
    except Exception:
        log.exception(what)


async def wait_or_wake(wake: asyncio.Event, period_s: float) -> None:
    """Sleep until the next pass: `period_s`, or sooner when `wake` is set (then cleared)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), period_s)
    wake.clear()
