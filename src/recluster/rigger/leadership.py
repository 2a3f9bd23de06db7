"""The rigger process: two replicas on different nodes, one leading through a Lease
(`<rec>-services-rigger`). A database's Service follows a failover only while a rigger acts, and a
single replica on a crashed node was replaced only after the node was declared lost (~35 s on the
local cluster); the standby takes over within the Lease's seconds with its Sentinel subscriptions
and cluster state already warm."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from recluster.clients.kubernetes import Kube
from recluster.clients.lease import LeaderLease, LeaseLost
from recluster.rigger.loop import Rigger
from recluster.rigger.observe import RiggerConfig

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


async def lead_while_held(rigger: Rigger, lease: LeaderLease) -> None:
    """Acquire, lead, and on a lost Lease stand by and try again, for ever: the process lives on
    (a restart would only add the container's back-off to the next takeover)."""
    while True:
        try:
            await lease.acquire()
            rigger.lead()
            await lease.keep()
        except LeaseLost as exc:
            log.warning("standing by: %s", exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the apiserver unreachable: stand by and retry
            log.warning("standing by: the Lease cannot be read or renewed (%s)", type(exc).__name__)
        rigger.stand_by()
        await asyncio.sleep(RETRY_SECONDS)


async def run(
    config: RiggerConfig, kubeconfig: str | None, lease_name: str, identity: str, lease_seconds: float
) -> None:
    kube = await Kube.connect("services-rigger", kubeconfig)
    rigger = Rigger(config, kube)
    lease = LeaderLease(kube, config.namespace, lease_name, identity, lease_seconds)
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    tasks = [asyncio.create_task(rigger.run()), asyncio.create_task(lead_while_held(rigger, lease))]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        log.info("stopping: handing the Lease over")
    finally:
        for task in tasks:
            task.cancel()
        rigger.stand_by()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lease.release(), timeout=2.0)
        await kube.close()
