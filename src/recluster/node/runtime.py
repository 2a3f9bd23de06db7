"""What the parts of a node's runtime share, made once at start: its configuration, its processes
and their controls, the cluster it belongs to (nothing before bootstrap) and the leader loop's
wake-up. Each part (bootstrap, node loop, leader loop, hand-off, failover watch) keeps its own state
in its own object; this holds only what more than one of them reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from recluster.node.acl_secrets import AclSecrets, backup_key_seal
from recluster.node.ccs import CcsServer, CcsStore
from recluster.node.config import NodeConfig
from recluster.node.database_tls import DatabaseTls, renew_contexts, sentinel_directives
from recluster.node.identity import Membership
from recluster.node.probes import Probes
from recluster.node.sentinel import Hurry, SentinelServer
from recluster.node.sentinel_access import SentinelAccess
from recluster.node.sentinels import Sentinels, TlsNames
from recluster.node.served_tls import ServedTls
from recluster.node.shards import ShardSupervisor


@dataclass
class BootstrapStatus:
    state: str = "idle"
    start_time: str = ""
    end_time: str = ""
    error_code: str = ""
    error_details: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.start_time:
            out["start_time"] = self.start_time
        if self.end_time:
            out["end_time"] = self.end_time
        if self.state == "error":
            out["error_code"] = self.error_code
            out["error_details"] = self.error_details
        return out


class NodeRuntime:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.membership = Membership.load(cfg.data_dir)
        self.bootstrap = BootstrapStatus("completed" if self.membership else "idle")
        self.store: CcsStore | None = CcsStore(cfg, self.membership.ccs_password) if self.membership else None
        self.ccs_server = CcsServer(cfg)
        self.database_tls = DatabaseTls(cfg.data_dir, cfg.node_name, cfg.addr, cfg.service_domain)
        # who may change the sentinels: known with the cluster's secret (shared with the failover watch)
        self.sentinel_access = SentinelAccess(self.membership.ccs_password if self.membership else None)
        self.sentinel_server = SentinelServer(cfg, self.sentinel_access)
        self.sentinel_tls_server = SentinelServer(
            cfg, self.sentinel_access,
            lambda: sentinel_directives(self.database_tls.node, cfg.sentinel_tls_port))
        self.hurry = Hurry()  # shared with the failover watch's own SentinelControl (its thread)
        self.tls_names = TlsNames()  # shared with the failover watch too
        self.sentinel = self.make_sentinels()
        self.shards = ShardSupervisor(cfg, self.database_tls)
        self.probes = Probes(self.database_tls.client_kwargs())  # the node and leader loops' (one event loop)
        self.wake = asyncio.Event()  # the leader loop looks at once
        self._tuned_sentinel: dict[int, int] = {}  # sentinel port -> the process pid tuned
        self._acl_secrets: tuple[str, AclSecrets] | None = None
        # the TLS of this node's HTTPS servers (REST API, console, metrics), set by the runner: the
        # node loop makes them serve the certificates the cluster state holds
        self.served_tls: ServedTls | None = None

    @property
    def names(self) -> tuple[str, str]:
        """What this node is called in addresses: its name and its current IP."""
        return (self.cfg.node_name, self.cfg.addr)

    def acl_secrets(self) -> AclSecrets:
        """The sealing of the users' database password hashes (needs the cluster's secret)."""
        if self.membership is None:
            raise RuntimeError("not a member of a cluster: no cluster secret to seal with")
        if self._acl_secrets is None or self._acl_secrets[0] != self.membership.ccs_password:
            self._acl_secrets = (self.membership.ccs_password, AclSecrets(self.membership.ccs_password))
        return self._acl_secrets[1]

    def backup_key_seal(self) -> AclSecrets:
        """The sealing of scheduled backups' S3 secret keys in the cluster state (the cluster's secret)."""
        if self.membership is None:
            raise RuntimeError("not a member of a cluster: no cluster secret to seal with")
        return backup_key_seal(self.membership.ccs_password)

    def member(self) -> tuple[Membership, CcsStore] | None:
        """The cluster this node belongs to, once its bootstrap completed."""
        if self.membership is None or self.store is None or self.bootstrap.state != "completed":
            return None
        return self.membership, self.store

    def make_sentinels(self) -> Sentinels:
        return Sentinels(self.cfg, self.sentinel_access, self.hurry, self.tls_names,
                         self.database_tls.client_kwargs())

    async def start_sentinel(self) -> None:
        self.sentinel_server.start()
        await wait_for("the sentinel to start", self.sentinel.client.ping, 30)
        await self.tune_sentinel()

    async def renew_tls_clients(self) -> None:
        """The node's TLS trust list or certificate changed: the node and leader loops' TLS clients
        load them again (the failover watch renews its own: TlsNames.trust_changed)."""
        self.tls_names.trust_changed()
        await renew_contexts([self.sentinel.tls.client])
        await self.probes.close()

    async def ensure_tls_sentinel(self) -> None:
        """The TLS sentinel runs (with the node's current certificate) while the cluster has a TLS
        database."""
        if not self.sentinel_tls_server.process.running():
            self.sentinel_tls_server.start()
            self.sentinel.forget_masters()
            await wait_for("the TLS sentinel to start", self.sentinel.tls.client.ping, 30)

    async def tune_sentinel(self) -> None:
        """Each sentinel's run-time settings, once per sentinel process."""
        for server, control in ((self.sentinel_server, self.sentinel.plain),
                                (self.sentinel_tls_server, self.sentinel.tls)):
            pid = server.process.pid()
            if pid is not None and pid != self._tuned_sentinel.get(server.port):
                await control.tune()
                self._tuned_sentinel[server.port] = pid

    async def stop_processes(self) -> None:
        await asyncio.gather(asyncio.to_thread(self.shards.stop_all),
                             asyncio.to_thread(self.sentinel_server.process.stop),
                             asyncio.to_thread(self.sentinel_tls_server.process.stop),
                             asyncio.to_thread(self.ccs_server.process.stop))

    async def close(self) -> None:
        await self.sentinel.close()
        if self.store is not None:
            await self.store.close()
        await self.probes.close()


async def wait_for(what: str, check: Callable[[], Awaitable[Any]], timeout_s: float,
                   interval: float = 0.2) -> None:
    """Poll the async `check` until it returns true; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(RedisError, OSError):
            if await check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
