"""What makes a console session valid on every node of a cluster: the secret the nodes share (the
CCS password in the node's membership file, which every member holds and nobody outside does) for
the session keys, and the CCS, replicated to every node, for the record of logouts.

A logout is a key `recluster:console:logout:<session id>` written on the CCS master and acknowledged
by the replicas connected to it (at least the majority the CCS itself requires for a write:
`min-replicas-to-write`), expiring when the token could not be valid any more anyway. Every request
reads it from the node's own CCS copy. So a logout on one node is refused on all of them from the
moment it is answered, a restarted node knows it (the CCS is persistent), and a cluster without a
majority cannot record a logout: the console says so and the session stays valid until it expires.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recluster.clients.redis_retry import no_retry
from recluster.console.sessions import RevocationUnavailable, SessionKeys

log = logging.getLogger(__name__)

# the node's membership file (recluster.node.identity.Membership.path; a test keeps the two equal)
MEMBERSHIP_FILE = "membership.json"
LOGOUT_PREFIX = "recluster:console:logout:"
WAIT_MS = 1000  # for every connected replica's acknowledgement; a majority's is required


class ClusterSecret:
    """The session keys of the cluster this node belongs to, derived from the CCS password in its
    membership file (read again when the file changes: a node that leaves and joins another cluster
    gets that cluster's keys). None while the node is in no cluster."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / MEMBERSHIP_FILE
        self._stamp: tuple[int, int, int] | None = None
        self._password: str | None = None
        self._keys: SessionKeys | None = None

    def _read(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._password, self._keys = None, None, None
            return
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            membership = json.loads(self.path.read_text())
            password, cluster = str(membership["ccs_password"]), str(membership["cluster_name"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("console sessions: cannot read %s (%s)", self.path, type(exc).__name__)
            return  # keep what was read before; the node rewrites the file atomically
        self._stamp, self._password = stamp, password
        self._keys = SessionKeys(password.encode(), cluster.encode())

    def keys(self) -> SessionKeys | None:
        self._read()
        return self._keys

    def ccs_password(self) -> str | None:
        self._read()
        return self._password


class CcsRevocations:
    """Logouts in the cluster's CCS: written on its master, read on this node's copy."""

    def __init__(self, addr: str, ccs_port: int, secret: ClusterSecret) -> None:
        self.addr, self.ccs_port, self.secret = addr, ccs_port, secret
        self._clients: dict[tuple[str, int, str], aioredis.Redis] = {}

    def _client(self, host: str, port: int) -> aioredis.Redis:
        password = self.secret.ccs_password()
        if password is None:
            raise RevocationUnavailable("this node is not in a cluster")
        key = (host, port, password)
        if key not in self._clients:
            if len(self._clients) >= 8:  # the CCS master moved or the password changed: start afresh
                self._clients.clear()
            self._clients[key] = aioredis.Redis(host=host, port=port, password=password, socket_timeout=2,
                                                socket_connect_timeout=1, retry=no_retry(),
                                                decode_responses=True)
        return self._clients[key]

    async def revoked(self, sid: str) -> bool:
        try:
            return bool(await self._client(self.addr, self.ccs_port).exists(LOGOUT_PREFIX + sid))
        except RedisError as exc:
            reason = type(exc).__name__
            raise RevocationUnavailable(f"this node's cluster store does not answer ({reason})") from exc

    async def revoke(self, sid: str, until: float) -> None:
        try:
            local = self._client(self.addr, self.ccs_port)
            role = await local.info("replication")
            master = local if role.get("role") == "master" else self._client(
                str(role["master_host"]), int(role["master_port"]))
            replication = await master.info("replication")
            if replication.get("role") != "master":
                raise RevocationUnavailable("the cluster store's master is changing; try again")
            connected = int(replication.get("connected_slaves", 0))
            needed = int((await master.config_get("min-replicas-to-write")).get("min-replicas-to-write") or 0)
            # one connection for both: WAIT counts the acknowledgements of its own connection's writes
            async with master.pipeline(transaction=False) as pipe:
                pipe.set(LOGOUT_PREFIX + sid, "1", pxat=int(until * 1000))
                pipe.wait(connected, WAIT_MS)
                _, acknowledged = await pipe.execute()
        except (RedisError, KeyError, ValueError) as exc:
            raise RevocationUnavailable(f"the cluster store refused it ({type(exc).__name__}: "
                                        f"{str(exc)[:120]})") from exc
        if int(acknowledged) < needed:
            raise RevocationUnavailable(f"only {acknowledged} of the {needed} nodes the cluster needs "
                                        f"besides its leader acknowledged it")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
