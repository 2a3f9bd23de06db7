"""Membership: how a node comes to belong to a cluster and stops belonging to it. Create a cluster,
join one (and, on the leader, admit a joining node), resume after a restart with the membership its
data directory records, keep the CCS replica running under the current leader, and leave."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable
from typing import Any

import httpx
from redis.exceptions import RedisError

from recluster.api.quorum import majority
from recluster.node.auth import hash_password
from recluster.node.ccs import CcsStore, utcnow
from recluster.node.config import read_credentials_file
from recluster.node.database_tls import new_ca
from recluster.node.errors import ApiError
from recluster.node.identity import Membership, Peer
from recluster.node.probes import one_off, port_closed
from recluster.node.records import ClusterRecord, ClusterState, NodeRecord
from recluster.node.request_models import BootstrapRequest, Credentials, JoinRequest
from recluster.node.runtime import BootstrapStatus, NodeRuntime, wait_for
from recluster.node.sentinel import CCS_NAME, Monitor, command

log = logging.getLogger(__name__)


class BootstrapFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Bootstrap:
    def __init__(self, rt: NodeRuntime, http: httpx.AsyncClient) -> None:
        self.rt = rt
        self.cfg = rt.cfg
        self._http = http
        self._task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # ---- create or join ---------------------------------------------------------------------------

    def begin(self, action: str, request: BootstrapRequest) -> None:
        status = self.rt.bootstrap
        if status.state in ("creating_cluster", "joining_cluster"):
            raise ApiError(409, "bootstrap_in_progress",
                           f"a bootstrap is in progress (state '{status.state}')")
        if self.rt.membership is not None:
            raise ApiError(409, "already_bootstrapped", "this node already belongs to cluster "
                           f"'{self.rt.membership.cluster_name}'")
        if request.credentials is None:
            request.credentials = self._credentials_from_file()
        if action == "join_cluster" and not request.cluster.nodes:
            raise ApiError(400, "config_error", "'cluster.nodes': join_cluster needs the address of at "
                           "least one node of the cluster", "cluster.nodes")
        if action == "create_cluster" and not request.cluster.name:
            raise ApiError(400, "config_error", "'cluster.name': create_cluster needs the cluster's name",
                           "cluster.name")
        self.rt.bootstrap = BootstrapStatus("creating_cluster" if action == "create_cluster"
                                            else "joining_cluster", start_time=utcnow())
        work = self._create(request) if action == "create_cluster" else self._join(request)
        self._task = asyncio.create_task(self._run(work))

    def _credentials_from_file(self) -> Credentials:
        if self.cfg.credentials_file is None:
            raise ApiError(400, "missing_field", "'credentials' is required (this node has no "
                           "--credentials-file to take them from)", "credentials")
        try:
            username, password = read_credentials_file(self.cfg.credentials_file)
        except (OSError, ValueError, KeyError) as exc:
            raise ApiError(400, "config_error", "'credentials': the node's credentials file cannot be "
                           f"read ({type(exc).__name__})", "credentials") from exc
        return Credentials(username=username, password=password)

    async def _run(self, work: Awaitable[None]) -> None:
        try:
            await work
            self.rt.bootstrap.state, self.rt.bootstrap.end_time = "completed", utcnow()
            membership = self.rt.membership
            log.info("bootstrap completed: node %d of cluster '%s'", membership.node_uid if membership else 0,
                     membership.cluster_name if membership else "")
        except BootstrapFailed as exc:
            self._error(exc.code, exc.message)
        except Exception as exc:
            log.exception("bootstrap failed")
            self._error("internal_error", f"{type(exc).__name__}: {exc}")

    def _error(self, code: str, message: str) -> None:
        log.warning("bootstrap failed: %s: %s", code, message)
        status = self.rt.bootstrap
        status.state, status.end_time = "error", utcnow()
        status.error_code, status.error_details = code, {"message": message}

    def _me_as_peer(self) -> Peer:
        return Peer(self.cfg.node_name, self.cfg.ccs_port, self.cfg.sentinel_port, self.cfg.api_port,
                    self.cfg.addr, self.cfg.sentinel_tls_port)

    async def _create(self, request: BootstrapRequest) -> None:
        credentials = request.credentials
        assert credentials is not None  # filled in by begin
        password = secrets.token_hex(24)
        name = request.cluster.name or "cluster.local"
        self.rt.sentinel_access.use(password)
        self.rt.ccs_server.start(password, None, 0)
        store = CcsStore(self.cfg, password)
        await wait_for("the configuration store to start", store.local.ping, 30)
        await self.rt.start_sentinel()
        await self.rt.sentinel.ensure([Monitor(CCS_NAME, self.cfg.addr, self.cfg.ccs_port, 1, password)])
        ca = new_ca(name)
        state = ClusterState(cluster=ClusterRecord(
            name=name, created_time=utcnow(), username=credentials.username,
            password_hash=hash_password(credentials.password), license=request.license or "",
            license_updated=utcnow() if request.license else "",
            database_ca_cert=ca.certificate, database_ca_key=ca.key))
        state.nodes[1] = NodeRecord(uid=1, name=self.cfg.node_name, addr=self.cfg.addr,
                                    api_port=self.cfg.api_port, ccs_port=self.cfg.ccs_port,
                                    sentinel_port=self.cfg.sentinel_port,
                                    sentinel_tls_port=self.cfg.sentinel_tls_port,
                                    metrics_port=self.cfg.metrics_port,
                                    total_memory=total_memory(), cores=os.cpu_count() or 1,
                                    joined_time=utcnow())
        state.next_uid["node"] = 2
        await store.initialize(state)
        membership = Membership(1, name, password, [self._me_as_peer()])
        membership.save(self.cfg.data_dir)
        self.rt.store, self.rt.membership = store, membership

    async def _join(self, request: BootstrapRequest) -> None:
        body = JoinRequest(name=self.cfg.node_name, addr=self.cfg.addr, api_port=self.cfg.api_port,
                           ccs_port=self.cfg.ccs_port, sentinel_port=self.cfg.sentinel_port,
                           sentinel_tls_port=self.cfg.sentinel_tls_port, metrics_port=self.cfg.metrics_port,
                           total_memory=total_memory(), cores=os.cpu_count() or 1)
        assert request.credentials is not None  # filled in by begin
        auth = (request.credentials.username, request.credentials.password)
        answer: dict[str, Any] | None = None
        problems = []
        for target in request.cluster.nodes:
            host, _, port = target.partition(":")
            url = f"https://{host}:{port or self.cfg.api_port}/v1/internal/join"
            try:
                response = await self._http.post(url, json=body.model_dump(), auth=auth)
            except httpx.HTTPError as exc:
                problems.append(f"{target}: {type(exc).__name__}")
                continue
            if response.status_code == 401:
                raise BootstrapFailed("access_denied", f"{target} refused the credentials")
            if response.status_code != 200:
                problems.append(f"{target}: HTTP {response.status_code} {response.text[:200]}")
                continue
            answer = response.json()
            break
        if answer is None:
            raise BootstrapFailed("connect_error", "no node of the cluster admitted this node: "
                                  + "; ".join(problems))
        peers = [Peer(**p) for p in answer["peers"]]
        membership = Membership(int(answer["node_uid"]), str(answer["cluster_name"]),
                                str(answer["ccs_password"]), peers)
        membership.save(self.cfg.data_dir)
        leader = (str(answer["leader"]), int(answer["leader_ccs_port"]))
        self.rt.sentinel_access.use(membership.ccs_password)
        store = CcsStore(self.cfg, membership.ccs_password)
        self.rt.ccs_server.start(membership.ccs_password, leader, majority(len(peers)) - 1)
        await self.rt.start_sentinel()
        await self.rt.sentinel.ensure([Monitor(CCS_NAME, leader[0], leader[1], majority(len(peers)),
                                               membership.ccs_password)])
        self.rt.store, self.rt.membership = store, membership

        async def synced() -> bool:
            state = await store.read_local()
            return await store.in_sync() and state is not None and membership.node_uid in state.nodes

        try:
            await wait_for("this node's configuration store to sync from the leader", synced, 90)
        except TimeoutError as exc:
            raise BootstrapFailed("connect_error", str(exc)) from exc

    async def admit(self, request: JoinRequest) -> dict[str, Any]:
        """Leader: add a node to the cluster (or give a returning node its old uid)."""
        store = self.rt.store
        assert store is not None and self.rt.membership is not None

        def change(state: ClusterState) -> int:
            existing = state.node_by_name(request.name)
            if existing is not None:
                existing.addr = request.addr  # a pod back under its name, maybe at a new address
                return existing.uid
            uid = state.allocate("node")
            while uid in state.nodes:
                uid = state.allocate("node")
            state.nodes[uid] = NodeRecord(uid=uid, joined_time=utcnow(),
                                          **request.model_dump(exclude={"total_memory", "cores"}),
                                          total_memory=request.total_memory, cores=request.cores)
            return uid

        uid = await store.write(change, f"admit node {request.name}")
        self.rt.wake.set()  # the leader loop places replicas on the new node without waiting its period
        state = store.last_state
        assert state is not None
        peers = [peer_of(n).__dict__ for n in state.nodes.values()]
        return {"node_uid": uid, "cluster_name": state.cluster.name, "ccs_password": store.password,
                "leader": self.cfg.addr, "leader_ccs_port": self.cfg.ccs_port, "peers": peers}

    # ---- resume, keep, leave ----------------------------------------------------------------------

    async def resume(self) -> None:
        """Restarted with a data directory that says we belong to a cluster: start (or adopt) the
        sentinel and the CCS as the replica of the current leader, then the node loop does the rest."""
        assert self.rt.membership is not None and self.rt.store is not None
        self.rt.sentinel_server.start()
        await wait_for("the sentinel to start", self.rt.sentinel.client.ping, 30)
        await self.ensure_ccs_running()
        log.info("resumed membership of cluster '%s' as node %d", self.rt.membership.cluster_name,
                 self.rt.membership.node_uid)

    async def ensure_ccs_running(self) -> None:
        membership = self.rt.membership
        assert membership is not None
        if self.rt.ccs_server.process.running():
            return
        master = await self._find_ccs_master(membership)
        me = master is None or master[0] in self.rt.names
        self.rt.ccs_server.start(membership.ccs_password, None if me else master,
                                 majority(len(membership.peers)) - 1)

    async def _find_ccs_master(self, membership: Membership) -> tuple[str, int] | None:
        """The CCS master the sentinels agree on: the answer with the highest config epoch among the
        peers' sentinels (a node back from a crash may remember an old master)."""
        best: tuple[int, str, int] | None = None
        for peer in membership.peers:
            client = one_off(await self._current_host(peer), peer.sentinel_port)
            try:
                row = await command(client, "SENTINEL", "MASTER", CCS_NAME)
                entry = dict(zip(row[::2], row[1::2], strict=False)) if isinstance(row, list) else dict(row)
                epoch = int(entry.get("config-epoch", 0))
                if best is None or epoch > best[0]:
                    best = (epoch, str(entry["ip"]), int(entry["port"]))
            except (RedisError, OSError, KeyError, ValueError):
                pass
            finally:
                await client.aclose()
        if best is None:
            return None
        # the sentinels remember addresses; after the pods came back with new ones (a whole cluster
        # restarted) the answer is the master's old address: find its node and where it is now
        owner = next((p for p in membership.peers if best[1] in (p.addr, p.name)), None)
        if owner is None or owner.name == self.cfg.node_name:
            return (self.cfg.addr if owner is not None else best[1], best[2])
        return (await self._current_host(owner), best[2])

    @staticmethod
    async def _current_host(peer: Peer) -> str:
        """Where a peer is now: its recorded address while that answers, else its name's address
        (or the name itself, for Redis to resolve when it connects). Only a resuming node asks, the
        failover path never does."""
        if not peer.addr or peer.addr == peer.name or not await port_closed(peer.addr, peer.sentinel_port):
            return peer.host
        with contextlib.suppress(OSError, TimeoutError, IndexError):
            infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
                peer.name, None, type=socket.SOCK_STREAM), 2)
            return str(infos[0][4][0])
        return peer.name

    def remember_peers(self, state: ClusterState) -> None:
        """Record the members in the data directory: where a restarted node looks for its cluster."""
        membership = self.rt.membership
        assert membership is not None
        peers = [peer_of(n) for n in sorted(state.nodes.values(), key=lambda n: n.uid)]
        if peers != membership.peers:
            membership.peers = peers
            membership.save(self.cfg.data_dir)

    async def leave(self) -> None:
        """This node was removed: stop everything of the cluster and forget the membership."""
        log.info("this node is no longer a member of the cluster; stopping its processes")
        rt = self.rt
        await asyncio.to_thread(rt.shards.stop_all)
        await asyncio.to_thread(rt.sentinel_server.process.stop)
        await asyncio.to_thread(rt.sentinel_tls_server.process.stop)
        await asyncio.to_thread(rt.ccs_server.process.stop)
        Membership.forget(self.cfg.data_dir)
        for sub in ("sentinel", "sentinel-tls", "tls-databases", "ccs"):
            path = self.cfg.data_dir / sub
            for child in sorted(path.glob("**/*"), reverse=True) if path.exists() else []:
                with contextlib.suppress(OSError):
                    child.unlink() if child.is_file() else child.rmdir()
        if rt.store is not None:
            await rt.store.close()
        rt.membership, rt.store = None, None
        rt.sentinel_access.use(None)
        rt.bootstrap = BootstrapStatus("idle")
        rt.sentinel = rt.make_sentinels()


def peer_of(node: NodeRecord) -> Peer:
    return Peer(node.name, node.ccs_port, node.sentinel_port, node.api_port, node.addr,
                node.sentinel_tls_port)


def total_memory() -> int:
    try:
        for line in open("/proc/meminfo").read().splitlines():  # noqa: SIM115
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
