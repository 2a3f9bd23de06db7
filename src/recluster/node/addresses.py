"""Where the nodes are now. Redis and Sentinel traffic goes to a node's recorded address, never
through DNS (a lookup hangs while a cluster DNS server sits on a dead node). A node back at a new
address (a pod restarted) announces it on the leader's CCS (`CcsStore.announce_address`); the leader
records it once the node's CCS answers there with the cluster's CCS password, which only members
hold. A silent named node that announced nothing is also looked up by name in the background, one
lookup per node at a time, so a hanging DNS server neither blocks the leader loop nor piles up
resolver threads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable

from recluster.node.records import NodeRecord

LOOKUP_TIMEOUT_S = 30.0


async def resolve(name: str) -> str | None:
    with contextlib.suppress(OSError, TimeoutError, IndexError):
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            name, None, type=socket.SOCK_STREAM), LOOKUP_TIMEOUT_S)
        return str(infos[0][4][0])
    return None


class AddressWatch:
    def __init__(self) -> None:
        self._lookups: dict[int, asyncio.Task[str | None]] = {}

    def moved(self, nodes: Iterable[NodeRecord], up: set[int], my_name: str, my_addr: str,
              confirmed: dict[int, str] | None = None) -> dict[int, str]:
        """Node uid -> new address, for the nodes known to have moved (this one included, and those
        whose announced address was `confirmed`); starts the lookups the next call may answer."""
        out: dict[int, str] = {}
        for node in nodes:
            if node.name == my_name:
                if node.addr != my_addr:
                    out[node.uid] = my_addr
                continue
            if confirmed and confirmed.get(node.uid, node.addr) != node.addr:
                out[node.uid] = confirmed[node.uid]
                continue
            task = self._lookups.get(node.uid)
            if task is not None and task.done():
                del self._lookups[node.uid]
                addr = task.result()
                if addr and addr != node.addr:
                    out[node.uid] = addr
            elif task is None and node.uid not in up and node.name != node.addr:
                self._lookups[node.uid] = asyncio.create_task(resolve(node.name))
        return out

    def cancel(self) -> None:
        for task in self._lookups.values():
            task.cancel()
        self._lookups.clear()
