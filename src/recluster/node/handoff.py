"""The SIGTERM hand-off: a node told to stop announces a planned restart to the leader (so its
replicas stay where they are for the restart grace) and hands its master shards and the CCS over to
replicas elsewhere before its processes stop, waiting until a majority of the sentinels agree."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from recluster.api.quorum import majority
from recluster.node.ccs import CcsStore
from recluster.node.probes import one_off
from recluster.node.runtime import NodeRuntime, wait_for
from recluster.node.sentinel import CCS_NAME, command

log = logging.getLogger(__name__)

HANDOFF_RETRY_S = 2.0  # how often a shutting-down node repeats a refused failover request
ANNOUNCE_TIMEOUT_S = 2.0  # a planned restart's announcement to the leader, on SIGTERM
HANDOFF_WAIT_S = 25.0


async def announce_restart(store: CcsStore, me: int) -> None:
    """SIGTERM is a planned stop: tell the leader first, so it waits for this node's return
    before it copies its replicas elsewhere (`placement.nodes_to_evacuate`)."""
    try:
        await asyncio.wait_for(store.announce_restart(me), ANNOUNCE_TIMEOUT_S)
        log.info("shutdown: told the leader this is a planned restart")
    except (TimeoutError, RedisError, OSError) as exc:
        log.info("shutdown: could not tell the leader this is a planned restart (%s)", type(exc).__name__)


async def hand_over(rt: NodeRuntime) -> None:
    """Planned failover of this node's master shards (and the CCS) to replicas elsewhere."""
    assert rt.store is not None and rt.membership is not None
    state = await rt.store.read()
    if state is None or len(state.nodes) < 2:
        return
    me = rt.membership.node_uid
    names = []
    for shard in state.shards_on(me):
        bdb = state.bdbs.get(shard.bdb_uid)
        if bdb is None or shard.role != "master":
            continue
        if any(s.node_uid != me for s in state.shards_of(bdb.uid)):
            names.append(bdb.name)
    if await rt.store.is_master():
        names.append(CCS_NAME)
    mine = rt.names
    requested: dict[str, float] = {}

    async def request_failovers() -> None:
        """Ask (again, every HANDOFF_RETRY_S) for the failover of each master still here: Sentinel
        refuses while no replica is good enough yet or another failover runs, and one refusal
        must not leave the master to be found dead only after this node has exited."""
        for name in names:
            if time.monotonic() - requested.get(name, -HANDOFF_RETRY_S) < HANDOFF_RETRY_S:
                continue
            local = await rt.sentinel.master_addr(name)
            if local is not None and local[0] not in mine:
                continue
            requested[name] = time.monotonic()
            try:
                await rt.sentinel.failover(name)
                log.info("shutdown: asked sentinel to fail %s over to a replica", name)
            except RedisError as exc:
                log.info("shutdown: sentinel cannot fail %s over yet (%s); asking again", name, exc)

    await request_failovers()

    others = [p for p in rt.membership.peers if p.name not in mine and p.host not in mine]
    needed = majority(len(others) + 1) - 1  # a majority of all sentinels, this one (counted here) aside

    async def handed_over() -> bool:
        """A majority of the sentinels (not just ours, which knows first and dies with us) report
        every one of our masters elsewhere: then the new configuration survives our exit."""
        for name in names:
            local = await rt.sentinel.master_addr(name)
            if local is None or local[0] in mine:
                return False
            agree = 0
            tls = name in rt.tls_names
            for peer in others:
                client = one_off(peer.host, peer.sentinel(tls),
                                 rt.database_tls.client_kwargs() if tls else None)
                try:
                    reply = await command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
                    agree += bool(reply) and str(reply[0]) not in mine
                except (RedisError, OSError):
                    pass
                finally:
                    await client.aclose()
            if agree < needed:
                return False
        return True

    async def handed_over_or_ask_again() -> bool:
        if await handed_over():
            return True
        await request_failovers()
        return False

    await wait_for("this node's master shards to move to replicas", handed_over_or_ask_again, HANDOFF_WAIT_S)
    log.info("shutdown: %s handed over to replicas", ", ".join(names) or "nothing")
