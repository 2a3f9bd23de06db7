"""The shards placed on this node: redis-server processes on the database's port, bound to the
node's address, with the database's memory, persistence, eviction and password.

Roles belong to Sentinel once a database is monitored: a shard is started as a replica of the master
Sentinel names (or, for a new database, of the master the placement chose), and a running shard's role
is never changed here, so the daemon does not fight a failover.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recluster.api.access import INTERNAL_SHARD_USER, INTERNAL_USERS
from recluster.clients.redis_retry import no_retry
from recluster.node.config import NodeConfig, engine_table
from recluster.node.database_tls import DatabaseTls, shard_directives, shard_files
from recluster.node.engines import engine_of_info
from recluster.node.processes import ManagedProcess, write_private
from recluster.node.records import BdbRecord, ShardRecord
from recluster.node.shard_users import AclUser, internal_users

log = logging.getLogger(__name__)

REPLICA_MAX_LAG_S = 10


def memory_settings(bdb: BdbRecord) -> dict[str, str]:
    """The memory limit and eviction policy a shard of `bdb` runs with (what the leader checks)."""
    return {"maxmemory": str(bdb.memory_size), "maxmemory-policy": bdb.eviction_policy}


def runtime_settings(bdb: BdbRecord, shard: ShardRecord) -> dict[str, str]:
    """Settings applied with CONFIG SET when they change (also written to the config file)."""
    replication_user, replication_password = bdb.login("replication")
    if bdb.data_persistence == "snapshot" and bdb.snapshot_policy:
        save = " ".join(f"{r.secs} {r.writes}" for r in bdb.snapshot_policy)
    elif bdb.data_persistence == "snapshot":
        save = "3600 1"
    else:
        save = ""
    return {
        **memory_settings(bdb),
        "appendonly": "yes" if bdb.data_persistence == "aof" else "no",
        "appendfsync": "always" if bdb.aof_policy == "appendfsync-always" else "everysec",
        "save": save,
        "requirepass": bdb.authentication_redis_pass or "",
        "masterauth": replication_password or "",
        # "" clears it (Redis takes the empty string for none)
        "masteruser": replication_user or "",
        "min-replicas-to-write": str(shard.min_replicas_to_write),
        "min-replicas-max-lag": str(REPLICA_MAX_LAG_S),
    }


def conf_quote(value: str) -> str:
    """`value` as one double-quoted redis.conf argument that redis-server reads back byte for byte:
    quotes, backslashes, newlines and other control bytes escaped (a database password is free
    text; unescaped, a quote broke the file and a newline added a line of its own)."""
    out = []
    for byte in value.encode():
        if byte in (0x22, 0x5C):  # " and \
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def legacy_internal_user_args(bdb: BdbRecord) -> list[str]:
    """The one internal user of a database made before the cluster's per-job users
    (shard_users.internal_users) whose default user is off: every command (it replicates, probes,
    fails over, reconfigures), with the database password."""
    password = hashlib.sha256((bdb.authentication_redis_pass or "").encode()).hexdigest()
    return [INTERNAL_SHARD_USER, "reset", "on", f"#{password}", "~*", "&*", "+@all"]


def render_config(cfg: NodeConfig, shard_dir: Path, bdb: BdbRecord, settings: dict[str, str],
                  master: tuple[str, int] | None, users: tuple[AclUser, ...] = ()) -> str:
    listeners = shard_directives(bdb, shard_dir) if bdb.tls() else [f"port {bdb.port}"]
    lines = [
        f"bind {cfg.addr}",
        *listeners,
        "protected-mode no",
        "daemonize no",
        f"dir {shard_dir}",
        'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
        f"replica-announce-ip {cfg.addr}",
        "repl-diskless-sync yes",
        # a database has one replica: nothing to gain from Redis's default 5 s wait for more replicas
        # before a full sync starts, and a restarted replica (or a new one) would be 5 s later in sync
        "repl-diskless-sync-delay 0",
    ]
    for key, value in settings.items():
        if key in ("requirepass", "masterauth", "masteruser") and not value:
            continue
        lines.append(f"{key} {conf_quote(value)}")
    if not bdb.default_user:  # only the cluster's internal users and the database's users log in
        lines.append("user default off")
        if not bdb.internal_password:
            lines.append(" ".join(["user", *map(conf_quote, legacy_internal_user_args(bdb))]))
    for user in users:  # present from the first command: no window without them after a restart
        lines.append(" ".join(["user", conf_quote(user.name), *map(conf_quote, user.setuser_args())]))
    if master is not None:
        lines.append(f"replicaof {master[0]} {master[1]}")
    return "\n".join(lines) + "\n"


def shard_dir(data_dir: Path, bdb_uid: int) -> Path:
    """Where this node keeps its shard of a database: config, data, TLS files."""
    return data_dir / "shards" / str(bdb_uid)


@dataclass
class LocalShard:
    shard_uid: int
    bdb_uid: int
    port: int
    directory: Path
    process: ManagedProcess
    applied: dict[str, str] | None = None
    users: tuple[AclUser, ...] | None = None  # the ACL users applied (None: not known)
    user: str | None = None  # who the node's own client logs in as (BdbRecord.login("control"))
    client: aioredis.Redis | None = None
    uses_tls: bool = False
    engine: str | None = None  # the engine version the process runs (None: not known, e.g. adopted)


class ShardSupervisor:
    def __init__(self, cfg: NodeConfig, tls: DatabaseTls) -> None:
        self.cfg = cfg
        self.tls = tls
        self.root = cfg.data_dir / "shards"
        self.local: dict[int, LocalShard] = {}  # by bdb uid (one shard per database per node)
        self.answering: set[int] = set()  # bdb uids whose shard answered in the last `ensure`
        self.missing_engine: set[tuple[int, str]] = set()  # (bdb uid, version) already logged

    def shard_dir(self, bdb_uid: int) -> Path:
        return shard_dir(self.cfg.data_dir, bdb_uid)

    def _handle(self, bdb_uid: int) -> LocalShard:
        existing = self.local.get(bdb_uid)
        if existing is not None:
            return existing
        directory = self.shard_dir(bdb_uid)
        conf = directory / "redis.conf"
        process = ManagedProcess(f"shard of bdb {bdb_uid}", [self.cfg.redis_server, str(conf)],
                                 directory / "redis.pid", str(conf), directory / "redis.log")
        handle = LocalShard(0, bdb_uid, 0, directory, process)
        self.local[bdb_uid] = handle
        return handle

    def known_dirs(self) -> list[int]:
        if not self.root.exists():
            return []
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    @staticmethod
    def _password(bdb: BdbRecord) -> str | None:
        return bdb.login("control")[1] or None

    def client(self, handle: LocalShard, password: str | None) -> aioredis.Redis:
        """The node's own client of the shard, logged in as `handle.user` (BdbRecord.login("control"))."""
        if handle.client is None:
            handle.client = aioredis.Redis(host=self.cfg.addr, port=handle.port, username=handle.user,
                                           password=password or None,
                                           socket_timeout=2, socket_connect_timeout=1, decode_responses=True,
                                           retry=no_retry(),
                                           **(self.tls.client_kwargs() if handle.uses_tls else {}))
        return handle.client

    async def _drop_client(self, handle: LocalShard) -> None:
        if handle.client is not None:
            await handle.client.aclose()
            handle.client = None

    def holds_data(self, bdb: BdbRecord) -> bool:
        """The shard would load its own dataset on start: its database persists and the file is on
        the volume. (Without persistence a replica still keeps the dump.rdb of its last full sync,
        but that copy is stale: it does not count.)"""
        directory = self.shard_dir(bdb.uid)
        if bdb.data_persistence == "aof":
            aof = directory / "appendonlydir"
            return aof.is_dir() and any(aof.iterdir())
        if bdb.data_persistence == "snapshot":
            return (directory / "dump.rdb").exists()
        return False

    def process_running(self, bdb_uid: int) -> bool:
        return self._handle(bdb_uid).process.running()

    async def ensure(self, wanted: list[tuple[ShardRecord, BdbRecord, tuple[str, int] | None]],
                     hold: set[int] | None = None, current: set[str] | None = None,
                     check: bool = True,
                     users: Callable[[BdbRecord], tuple[AclUser, ...]] = lambda bdb: ()) -> None:
        """Run exactly the shards in `wanted`: (shard, its database, the master to follow or None to
        start as master). A stopped shard whose database is in `hold` is kept but not started yet.
        A running replica that follows an address no node has (`current`: the nodes' addresses now)
        is re-pointed at its master: Sentinel never sees such a replica, so it would never fix it.
        `check`: ask every shard (one INFO each) whether it answers and whom it follows; without it
        `answering` keeps the last answers, minus shards that are not running any more. `users`: the
        ACL users of a database's shards."""
        wanted_bdbs = {bdb.uid for _, bdb, _ in wanted}
        for bdb_uid in set(self.known_dirs()) | set(self.local):
            if bdb_uid not in wanted_bdbs:
                await self.remove(bdb_uid)
        if check:
            self.answering.clear()
        for shard, bdb, master in wanted:
            if hold and bdb.uid in hold and not self.process_running(bdb.uid):
                self.answering.discard(bdb.uid)
                continue
            try:
                started = await self._ensure_one(shard, bdb, master, users(bdb))
                if started or not self.process_running(bdb.uid):
                    self.answering.discard(bdb.uid)
                elif check:
                    await self._check(bdb, master, current)
            except (RedisError, OSError) as exc:
                log.warning("shard %d of bdb %d: %s", shard.uid, bdb.uid, type(exc).__name__)

    async def _ensure_one(self, shard: ShardRecord, bdb: BdbRecord, master: tuple[str, int] | None,
                          users: tuple[AclUser, ...]) -> bool:
        """Start the shard or apply changed settings; whether it was (re)started."""
        handle = self._handle(bdb.uid)
        if handle.shard_uid != shard.uid and handle.shard_uid and handle.process.running():
            await self.remove(bdb.uid)  # another shard of this database was here before
            handle = self._handle(bdb.uid)
        handle.shard_uid, handle.port, handle.uses_tls = shard.uid, bdb.port, bdb.tls()
        handle.user = bdb.login("control")[0]
        users = (*internal_users(bdb), *users)
        settings = runtime_settings(bdb, shard)
        reissued = bdb.tls() and self._ensure_certificate(bdb, handle.directory)
        version = shard.engine_of(bdb)
        engine = engine_table(self.cfg).get(version)
        if engine is not None and master is not None and handle.process.running() \
                and await self._runs_other(handle, bdb, engine.version):
            # an engine upgrade moved this shard (node/engine_upgrade.py; never a master): the same
            # directory and configuration on the new binary, back as a replica of the master. Only
            # while this node sees a master elsewhere to follow (a sentinel reading older than a
            # failover waits a pass: never a restart that would start as master)
            log.info("shard %d of bdb %d: restarting on engine %s (was %s)", shard.uid, bdb.uid,
                     engine.version, handle.engine)
            await self._drop_client(handle)
            await asyncio.to_thread(handle.process.stop)
        if not handle.process.running():
            if engine is None:  # never another engine: its data files may not load in an older one
                if (bdb.uid, version) not in self.missing_engine:  # once, not every pass
                    self.missing_engine.add((bdb.uid, version))
                    log.error("shard %d of bdb %d: this node has no engine %s (it has %s); not started",
                              shard.uid, bdb.uid, version, ", ".join(engine_table(self.cfg).versions()))
                return False
            handle.process.argv[0] = engine.server
            handle.engine = engine.version
            await self._drop_client(handle)
            handle.directory.mkdir(parents=True, exist_ok=True)
            write_private(handle.directory / "redis.conf",
                          render_config(self.cfg, handle.directory, bdb, settings, master, users))
            handle.process.start()
            handle.applied, handle.users = settings, users
            return True
        if handle.applied != settings:
            # the default user's login of an older database follows its password, which may be the
            # one changing now; the internal users' does not
            default_login = handle.user is None
            before, after = (self._password(bdb),) * 2
            if default_login:
                before, after = (handle.applied or {}).get("requirepass"), settings["requirepass"]
            client = self.client(handle, before)
            try:
                await client.ping()
            except RedisError:
                await self._drop_client(handle)
                client = self.client(handle, after)
            for key, value in settings.items():
                if handle.applied is None or handle.applied.get(key) != value:
                    await client.config_set(key, value)
                    if key == "requirepass" and default_login:
                        await self._drop_client(handle)
                        client = self.client(handle, value)
            handle.applied = settings
            await self._drop_client(handle)
        if handle.users != users:
            await self._apply_users(handle, bdb, users)
        if reissued:
            await self._reload_tls(handle, bdb)
        return False

    async def _runs_other(self, handle: LocalShard, bdb: BdbRecord, version: str) -> bool:
        """Whether the running shard runs another engine than `version`; a shard this process did
        not start (adopted after a daemon restart) is asked (INFO server) once it answers."""
        if handle.engine is None:
            try:
                handle.engine = engine_of_info(await self.client(handle, self._password(bdb)).info("server"))
            except (RedisError, OSError):
                await self._drop_client(handle)
                return False  # starting: asked again next pass
        return bool(handle.engine) and handle.engine != version

    async def _apply_users(self, handle: LocalShard, bdb: BdbRecord, users: tuple[AclUser, ...]) -> None:
        """The running shard's ACL users become exactly `users` (and `default`): a changed rule or
        password is set, a user no longer given the database is deleted, which also closes its open
        connections (Redis does on ACL DELUSER)."""
        client = self.client(handle, self._password(bdb))
        wanted = {user.name for user in users}
        for user in users:
            if handle.users is None or user not in handle.users:
                # the rules as Redis parses them (redis-py's acl_setuser rebuilds them from keywords)
                await client.execute_command(  # type: ignore[no-untyped-call]
                    "ACL", "SETUSER", user.name, *user.setuser_args())
        gone = [str(name) for name in await client.acl_users()
                if name not in ("default", INTERNAL_SHARD_USER) and name not in wanted]
        if gone:
            await client.acl_deluser(*gone)
        handle.users = users
        theirs = sorted(wanted - set(INTERNAL_USERS))
        log.info("shard of %s: ACL users now %s", bdb.name, ", ".join(theirs) or "none but the cluster's")

    def _ensure_certificate(self, bdb: BdbRecord, directory: Path) -> bool:
        """The shard's certificate is current (issued by this node from the cluster's database CA);
        True when it was (re)issued and a running shard must load it."""
        if self.tls.ca is None:
            raise RuntimeError(f"bdb {bdb.uid} asks for TLS and the cluster state has no database CA yet")
        return self.tls.ensure_shard(self.tls.ca, bdb, directory)

    async def _reload_tls(self, handle: LocalShard, bdb: BdbRecord) -> None:
        """A running shard loads its renewed certificate (or the user's new one) and trust list:
        setting a TLS file reloads the TLS configuration (new connections use it, open ones are
        kept); client authentication follows the database's setting. One CONFIG SET, so the
        certificate and its key are never loaded apart."""
        client = self.client(handle, self._password(bdb))
        files = shard_files(handle.directory)
        await client.execute_command(  # type: ignore[no-untyped-call]
            "CONFIG", "SET", "tls-auth-clients", "yes" if bdb.client_auth() else "no",
            "tls-ca-cert-file", str(files.ca), "tls-cert-file", str(files.cert),
            "tls-key-file", str(files.key),
            "tls-client-cert-file", str(files.client_cert), "tls-client-key-file", str(files.client_key))
        await self._drop_client(handle)  # the next one loads the node's new trust list too
        log.info("shard of %s: TLS certificate or trust list renewed", bdb.name)

    async def _check(self, bdb: BdbRecord, master: tuple[str, int] | None, current: set[str] | None) -> None:
        """One INFO a shard a pass: whether it answers (`answering`), and whether a replica follows
        an address no node has now (then it is re-pointed)."""
        handle = self._handle(bdb.uid)
        if not handle.process.running():
            return
        try:
            info = await self.client(handle, self._password(bdb)).info("replication")
        except (RedisError, OSError):
            await self._drop_client(handle)  # starting, or a password just changed: not ready yet
            return
        self.answering.add(bdb.uid)
        following = str(info.get("master_host") or "")
        if master is None or current is None or info.get("role") != "slave" or not following \
                or following in current:
            return
        log.info("shard of %s follows %s, an address no node has: replicating from %s:%d instead",
                 bdb.name, following, master[0], master[1])
        await self.client(handle, self._password(bdb)).replicaof(master[0], master[1])

    async def remove(self, bdb_uid: int) -> None:
        handle = self._handle(bdb_uid)
        await self._drop_client(handle)
        await asyncio.to_thread(handle.process.stop)
        shutil.rmtree(handle.directory, ignore_errors=True)
        self.local.pop(bdb_uid, None)
        log.info("removed the shard of bdb %d from this node", bdb_uid)

    def stop_all(self) -> None:
        handles = [self._handle(uid) for uid in set(self.known_dirs()) | set(self.local)]
        threads = [threading.Thread(target=h.process.stop) for h in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

