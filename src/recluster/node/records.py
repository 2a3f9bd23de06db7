"""The records kept in the configuration store: the nodes, databases, shards and actions, the
cluster's own record, and the whole state document they make. Pure: no I/O. Tolerant of fields a
newer version added (model_base.Record); the bdb fields' values are bdb_fields.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from recluster.api.access import (
    INTERNAL_IMPORT_USER,
    INTERNAL_REPLICATION_USER,
    INTERNAL_SENTINEL_USER,
    INTERNAL_SHARD_USER,
)
from recluster.api.ports import SENTINEL_TLS_PORT
from recluster.api.quorum import majority
from recluster.certificates import Pem, UserCertificate, join_pem
from recluster.node.bdb_fields import (
    AofPolicy,
    BdbStatus,
    ClientCert,
    DataPersistence,
    EvictionPolicy,
    SnapshotRule,
    Switch,
    TlsMode,
)
from recluster.node.engines import LEGACY_VERSION
from recluster.node.model_base import Record
from recluster.node.users import (
    RedisAclRecord,
    RolePermission,
    RoleRecord,
    UserRecord,
    builtin_acls,
)


class NodeRecord(Record):
    uid: int
    name: str
    addr: str
    api_port: int
    ccs_port: int
    sentinel_port: int
    sentinel_tls_port: int = SENTINEL_TLS_PORT
    metrics_port: int
    status: Literal["active", "decommissioning"] = "active"
    reachable: bool = True  # the leader's last probe of the node's CCS answered
    total_memory: int = 0
    cores: int = 1
    joined_time: str = ""

    def sentinel(self, tls: bool) -> int:
        """The port of the node's sentinel for TLS (or plaintext) databases."""
        return self.sentinel_tls_port if tls else self.sentinel_port


InternalJob = Literal["control", "replication", "sentinel", "import"]
INTERNAL_LOGINS: dict[str, str] = {"control": INTERNAL_SHARD_USER, "replication": INTERNAL_REPLICATION_USER,
                                   "sentinel": INTERNAL_SENTINEL_USER, "import": INTERNAL_IMPORT_USER}


class BdbRecord(Record):
    uid: int
    name: str
    type: str = "redis"
    memory_size: int
    port: int
    replication: bool
    shards_count: int = 1
    data_persistence: DataPersistence
    aof_policy: AofPolicy
    snapshot_policy: list[SnapshotRule]
    eviction_policy: EvictionPolicy
    authentication_redis_pass: str | None = None
    tls_mode: TlsMode = "disabled"
    enforce_client_authentication: Switch = "enabled"
    authentication_ssl_client_certs: list[ClientCert] = Field(default_factory=list)
    default_user: bool = True
    roles_permissions: list[RolePermission] = Field(default_factory=list)
    # the engine (engines.py): a record from before engines were chosen ran Redis 7.0
    redis_version: str = LEGACY_VERSION
    # while an in-place engine upgrade runs (node/engine_upgrade.py): the version it started from;
    # `redis_version` is then the target. "" when none runs
    upgrade_from: str = ""
    status: BdbStatus = "pending"
    action_uid: str = ""
    created_time: str = ""
    last_changed_time: str = ""
    generation: int = 1
    # The password of the cluster's own logins to the shards (recluster.node.shard_users), made at
    # creation and never shown; "" on a database created before them (see `login`)
    internal_password: str = ""
    # Whether the cluster's connections use those logins. False only while an older database moves to
    # them (recluster.node.login_migration): its shards get the users first, the logins follow once
    # every shard has them
    internal_logins: bool = True
    # Export and import (node/backup_actions.py), Redis Enterprise's status fields: None until the
    # first one, back to None after *_reset_status; *_failure_reason is Redis Enterprise's word,
    # *_failure_message (recluster's) says the problem in a sentence
    export_status: Literal["exporting", "succeeded", "failed"] | None = None
    export_progress: int | None = None
    export_failure_reason: str | None = None
    export_failure_message: str | None = None
    export_location_written: str | None = None  # the backup's manifest, where the last export wrote it
    import_status: Literal["importing", "succeeded", "failed"] | None = None
    import_progress: int | None = None
    import_failure_reason: str | None = None
    import_failure_message: str | None = None
    # recluster's: addresses outside the cluster the database is reached at (BdbUpdate.external_addr)
    external_addr: list[str] = Field(default_factory=list)
    # Scheduled backups (node/backup_schedule.py decides, node/backup_runs.py runs them on the leader),
    # Redis Enterprise's fields: `backup_interval` in seconds; `backup_location` is the location object
    # with its secret key sealed (acl_secrets.backup_key_seal) and is never shown, only its digest
    # (api/redb_backup.location_digest, of the location as given)
    backup: bool = False
    backup_interval: int = 0
    backup_location: dict[str, Any] | None = None
    backup_location_digest: str = ""
    backup_status: Literal["exporting", "succeeded", "failed"] | None = None
    backup_progress: int | None = None
    last_backup_time: str | None = None  # the last success (ISO 8601, UTC)
    backup_failure_reason: str | None = None
    # recluster's: the last failure in a sentence and when, the failures since the last success (the
    # retries' doubling delay) and of all time (the metric), the manifest of the last success, and
    # since when the schedule runs as it is (enabling backups or a new destination: a backup at once)
    backup_failure_message: str | None = None
    last_backup_failure_time: str | None = None
    backup_failures: int = 0
    backup_failures_total: int = 0
    backup_location_written: str | None = None
    backup_since: str = ""

    def tls(self) -> bool:
        return self.tls_mode == "enabled"

    def login(self, job: InternalJob) -> tuple[str | None, str | None]:
        """(user, password) the cluster's own connections to the shards use for `job`: the node's
        probes and settings (`control`), a replica's link to its master, Sentinel. Each job has its
        own user with only its commands. A database made before them keeps its older logins: Redis's
        default user with the database password, or INTERNAL_SHARD_USER when the default user is off,
        until it has moved to them (login_migration)."""
        if self.internal_password and self.internal_logins:
            return INTERNAL_LOGINS[job], self.internal_password
        return (None if self.default_user else INTERNAL_SHARD_USER), self.authentication_redis_pass

    def client_certificates(self) -> list[str]:
        return [entry.client_cert for entry in self.authentication_ssl_client_certs]

    def client_auth(self) -> bool:
        """Clients must present a certificate: TLS on, enforcement on, and certificates listed."""
        return self.tls() and self.enforce_client_authentication == "enabled" and bool(
            self.authentication_ssl_client_certs)


class ShardRecord(Record):
    uid: int
    bdb_uid: int
    node_uid: int
    role: Literal["master", "slave"]
    status: Literal["active", "inactive"] = "inactive"
    # the master shard's min-replicas-to-write; the leader lowers it to 0 while the replica's node is down
    min_replicas_to_write: int = 0
    # the engine version its node starts it with; "" = its database's `redis_version`. Set apart only
    # during an engine upgrade, which moves the shards one at a time (node/engine_upgrade.py)
    engine: str = ""
    # the version the leader last saw it run (INFO), "" before it looked
    running_version: str = ""

    def engine_of(self, bdb: BdbRecord) -> str:
        return self.engine or bdb.redis_version


class ActionRecord(Record):
    action_uid: str
    name: str
    object_name: str = ""
    node_uid: int | None = None
    status: Literal["queued", "running", "completed", "failed"] = "queued"
    progress: int = 0
    error_code: str = ""
    error_message: str = ""
    creation_time: str = ""
    step: str = ""
    initial_shards: int = 0


class ClusterRecord(Record):
    name: str
    created_time: str
    username: str
    password_hash: str
    # the admin's password before PUT /v1/users/password changed it, valid until (epoch seconds)
    previous_password_hash: str = ""
    previous_password_until: float = 0.0
    license: str = ""
    license_updated: str = ""
    # replica high availability (PUT /v1/cluster/policy): a down node's replicas move after the grace;
    # None = the node daemon's --replica-move-grace
    slave_ha: bool = True
    slave_ha_grace_period: int | None = None
    # the CA that signs the database certificates (node/database_tls.py); the key never leaves the
    # cluster state and the nodes' volumes. Empty in a state written before database TLS: the leader
    # creates one
    database_ca_cert: str = ""
    database_ca_key: str = ""

    # a certificate a user gave for the databases (PUT /v1/cluster/update_cert, name `proxy`): every
    # TLS shard serves it instead of one its node issues. `proxy_chain` is the leaf and intermediates,
    # `proxy_anchors` the self-signed CA(s) that verify it (trusted by the cluster's own clients too).
    # Empty: the nodes issue the shards' certificates from the database CA
    proxy_chain: str = ""
    proxy_key: str = ""
    proxy_anchors: str = ""
    # certificates a user gave for the node daemons' own HTTPS servers (PUT /v1/cluster/update_cert,
    # names `api` 9443, `cm` 8443, `metrics_exporter` 8070): every node serves the one of a name to
    # new connections instead of its own (node/served_tls.py). A name absent: the node's own
    served_certificates: dict[str, UserCertificate] = Field(default_factory=dict)
    # a rotation of the database CA (POST /v1/cluster/certificates/rotate, node/ca_rotation.py): the
    # next CA is trusted at once and becomes the CA at `database_ca_next_at` (epoch seconds); the CA
    # it replaces stays trusted until `database_ca_previous_until`
    database_ca_next_cert: str = ""
    database_ca_next_key: str = ""
    database_ca_next_at: float = 0.0
    database_ca_previous_cert: str = ""
    database_ca_previous_until: float = 0.0

    def database_ca(self) -> Pem | None:
        return Pem(self.database_ca_cert, self.database_ca_key) if self.database_ca_cert else None

    def proxy_certificate(self) -> UserCertificate | None:
        """The user's database certificate, None while the nodes issue their own."""
        if not self.proxy_chain:
            return None
        return UserCertificate(self.proxy_chain, self.proxy_key, self.proxy_anchors)

    def database_trust(self) -> str:
        """What a client of the databases (and the cluster's own) trusts: the user's CA(s) when a
        user certificate is served, and the database CA, which signs the TLS sentinels' (and, without
        a user certificate, the shards') certificates; during a rotation the next and the previous
        database CA too."""
        return join_pem(self.proxy_anchors, self.database_ca_cert, self.database_ca_next_cert,
                        self.database_ca_previous_cert)

    def grace_period_s(self, default_s: float) -> float:
        """The policy's grace, or the daemon's `--replica-move-grace` when the policy never set one."""
        return default_s if self.slave_ha_grace_period is None else float(self.slave_ha_grace_period)

    def replica_move_grace_s(self, default_s: float) -> float | None:
        """How long a down node's replicas wait before they move; None: they never do (slave_ha off)."""
        return self.grace_period_s(default_s) if self.slave_ha else None


class ClusterState(Record):
    """The whole cluster state: one versioned document, written only by the leader."""

    version: int = 0
    cluster: ClusterRecord
    nodes: dict[int, NodeRecord] = Field(default_factory=dict)
    bdbs: dict[int, BdbRecord] = Field(default_factory=dict)
    shards: dict[int, ShardRecord] = Field(default_factory=dict)
    actions: dict[str, ActionRecord] = Field(default_factory=dict)
    users: dict[int, UserRecord] = Field(default_factory=dict)
    roles: dict[int, RoleRecord] = Field(default_factory=dict)
    redis_acls: dict[int, RedisAclRecord] = Field(default_factory=builtin_acls)
    next_uid: dict[str, int] = Field(default_factory=dict)

    def allocate(self, kind: str, taken: Iterable[int] = ()) -> int:
        """A new uid of `kind`, above every uid in `taken` (the predefined ones)."""
        uid = max(self.next_uid.get(kind, 1), max(taken, default=0) + 1)
        self.next_uid[kind] = uid + 1
        return uid

    def shards_of(self, bdb_uid: int) -> list[ShardRecord]:
        return sorted((s for s in self.shards.values() if s.bdb_uid == bdb_uid), key=lambda s: s.uid)

    def shards_by_bdb(self) -> dict[int, list[ShardRecord]]:
        """Every database's shards (as `shards_of` gives them), in one pass over the shards: for
        loops over all databases, which asking `shards_of` each made quadratic (100 databases, 200
        shards: 20,000 steps a leader pass). A snapshot: it does not follow later changes."""
        found: dict[int, list[ShardRecord]] = {}
        for shard in sorted(self.shards.values(), key=lambda s: s.uid):
            found.setdefault(shard.bdb_uid, []).append(shard)
        return found

    def shards_on(self, node_uid: int) -> list[ShardRecord]:
        return sorted((s for s in self.shards.values() if s.node_uid == node_uid), key=lambda s: s.uid)

    def node_by_name(self, name: str) -> NodeRecord | None:
        for node in self.nodes.values():
            if name in (node.name, node.addr):
                return node
        return None

    def majority(self) -> int:
        return majority(len(self.nodes))
