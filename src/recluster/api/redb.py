"""RedisEnterpriseDatabase: spec and status models."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recluster.api.common import GROUP, ApiModel, Condition, K8sObject, ObjectMeta, OpenApiModel, SpecStatus
from recluster.api.quantity import MEMORY_SIZE_PATTERN

KIND = "RedisEnterpriseDatabase"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "redisenterprisedatabases"
SINGULAR = "redisenterprisedatabase"
SHORT_NAME = "redb"
FINALIZER = f"finalizer.{PLURAL}.{GROUP}"

MIN_MEMORY_SIZE = "100MB"
DATABASE_PORT_RANGE = range(10000, 20000)
MAX_SHARD_COUNT = 1  # one master shard per database for now (no cluster-mode sharding yet)


def database_secret_name(redb_name: str) -> str:
    """The database secret when `databaseSecretName` is not given."""
    return f"redb-{redb_name}"


class Persistence(StrEnum):
    DISABLED = "disabled"
    AOF_EVERY_SECOND = "aofEverySecond"
    AOF_ALWAYS = "aofAlways"
    SNAPSHOT_EVERY_1_HOUR = "snapshotEvery1Hour"
    SNAPSHOT_EVERY_6_HOUR = "snapshotEvery6Hour"
    SNAPSHOT_EVERY_12_HOUR = "snapshotEvery12Hour"


# the cluster REST API's aof_policy values
AOF_EVERY_SECOND = "appendfsync-every-sec"
AOF_ALWAYS = "appendfsync-always"
_SNAPSHOT_HOURS = {
    Persistence.SNAPSHOT_EVERY_1_HOUR: 1,
    Persistence.SNAPSHOT_EVERY_6_HOUR: 6,
    Persistence.SNAPSHOT_EVERY_12_HOUR: 12,
}


def persistence_fields(persistence: Persistence) -> dict[str, Any]:
    """A REDB `persistence` value as the bdb's fields in the cluster's REST API (`data_persistence`,
    `aof_policy`, `snapshot_policy`): what the operator and the service broker both ask for.
    Snapshots: one rule, every N hours if at least one key changed (Redis Enterprise's
    snapshot_policy shape)."""
    if persistence == Persistence.DISABLED:
        return {"data_persistence": "disabled"}
    if persistence == Persistence.AOF_EVERY_SECOND:
        return {"data_persistence": "aof", "aof_policy": AOF_EVERY_SECOND}
    if persistence == Persistence.AOF_ALWAYS:
        return {"data_persistence": "aof", "aof_policy": AOF_ALWAYS}
    hours = _SNAPSHOT_HOURS[persistence]
    return {"data_persistence": "snapshot", "snapshot_policy": [{"secs": hours * 3600, "writes": 1}]}


class TlsMode(StrEnum):
    DISABLED = "disabled"
    ENABLED = "enabled"
    REPLICA_SSL = "replica_ssl"  # in the public contract; refused (recluster has no Replica Of syncs)


# why `replica_ssl` is refused (by the REDB validator and by the REST API)
REPLICA_SSL_REFUSED = ("replica_ssl encrypts the syncs of Replica Of and Active-Active, which recluster "
                       "does not build: use enabled (TLS for clients and between the shards) or disabled")


class EvictionPolicy(StrEnum):
    """Redis's eight maxmemory policies."""

    VOLATILE_LRU = "volatile-lru"
    VOLATILE_LFU = "volatile-lfu"
    VOLATILE_RANDOM = "volatile-random"
    VOLATILE_TTL = "volatile-ttl"
    ALLKEYS_LRU = "allkeys-lru"
    ALLKEYS_LFU = "allkeys-lfu"
    ALLKEYS_RANDOM = "allkeys-random"
    NOEVICTION = "noeviction"


class DatabaseStatus(StrEnum):
    UNKNOWN = ""
    PENDING = "pending"
    ACTIVE = "active"
    ACTIVE_CHANGE_PENDING = "active-change-pending"
    DELETE_PENDING = "delete-pending"
    IMPORT_PENDING = "import-pending"
    CREATION_FAILED = "creation-failed"
    RECOVERY = "recovery"


class ClusterReference(ApiModel):
    name: str = Field(description="The REC this database lives in (same namespace).")


class RolePermission(ApiModel):
    """One entry of `rolesPermissions` (the public shape): the cluster role's users get the Redis ACL
    on this database. Both are named as the cluster's REST API knows them (/v1/roles, /v1/redis_acls)."""

    type: Literal["redis-enterprise"] = Field(description="Always redis-enterprise (a cluster role).")
    role: str = Field(min_length=1, description="The name of a role of the cluster.")
    acl: str = Field(min_length=1, description="The name of a Redis ACL of the cluster, e.g. 'Read Only'.")


class S3Backup(ApiModel):
    aws_secret_name: str = Field(min_length=1, description="Secret holding AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY (and, for a store with its own CA, ca_cert).")
    bucket_name: str = Field(min_length=1, description="The bucket; it must exist.")
    subdir: str = Field(default="", description="Folder in the bucket; each backup goes to "
                        "<subdir>/<database name>/<UTC time>/.")
    endpoint_url: str | None = Field(default=None, description="recluster's: http(s)://host[:port] of an "
                                     "S3-compatible store (path-style addressing); default AWS.")
    region: str | None = Field(default=None, description="recluster's: the store's region (us-east-1).")


class MountBackup(ApiModel):
    path: str = Field(min_length=1, description="A directory mounted on every node of the cluster.")


class RedbBackup(ApiModel):
    """Periodic backups by the cluster: one at creation (or when enabled, or when the destination
    changes), then every `interval` hours; a failed one is retried with doubling delays."""

    interval: int = Field(default=24, description="Hours between backups (1 or more).")
    s3: S3Backup | None = None
    mount: MountBackup | None = None
    # Redis Enterprise's other destinations: kept in their shape so the refusal can name them
    gcs: K8sObject | None = None
    abs: K8sObject | None = None
    sftp: K8sObject | None = None
    swift: K8sObject | None = None
    ftp: K8sObject | None = None


class RedisEnterpriseDatabaseSpec(OpenApiModel):
    """The REDB spec. Unknown keys are kept; recluster.api.support classifies them, as for the REC."""

    redis_enterprise_cluster: ClusterReference | None = Field(
        default=None, description="The cluster; defaults to the REC of the namespace."
    )
    memory_size: str = Field(
        default=MIN_MEMORY_SIZE,
        pattern=MEMORY_SIZE_PATTERN,
        description="Memory limit, e.g. 100MB, 1GB (binary units, as in redis.conf). At least 100MB.",
    )
    shard_count: int = Field(default=1, description="Number of master shards; only 1 is supported.")
    replication: bool = Field(default=False, description="Keep a replica shard on another node.")
    persistence: Persistence = Persistence.DISABLED
    eviction_policy: EvictionPolicy = EvictionPolicy.VOLATILE_LRU
    database_secret_name: str | None = Field(
        default=None, description="Secret with password, port and service_names; defaults to redb-<name>."
    )
    database_port: int | None = Field(
        default=None, description="Port of the database, 10000-19999, unique in the cluster. Immutable."
    )
    database_service_port: int | None = Field(default=None, description="Port of the database's Services.")
    default_user: bool = Field(
        default=True, description="Password-protect the default user (false: no secret)."
    )
    tls_mode: TlsMode = Field(
        default=TlsMode.DISABLED,
        description="enabled: the database's port speaks TLS only and its shards replicate over TLS; the "
        "CA clients trust is published in the database secret (`ca.crt`). Set at creation.",
    )
    client_authentication_certificates: list[str] | None = Field(
        default=None,
        description="Secrets, each with a `cert` key holding a PEM certificate (a client's own, or the CA "
        "that signs the clients): with tlsMode enabled only clients presenting one connect.",
    )
    enforce_client_authentication: bool = Field(
        default=True,
        description="false: the listed client certificates are not required (TLS without client "
        "authentication).",
    )
    roles_permissions: list[RolePermission] | None = Field(
        default=None,
        description="Which cluster roles' users may use this database, and with which Redis ACL; each "
        "such user connects with its own name and password (AUTH <user> <password>).",
    )
    redis_version: str | None = Field(
        default=None,
        max_length=32,
        description="The engine: major.minor for Redis (e.g. 8.0, 7.0), valkey-major.minor for Valkey "
        "(e.g. valkey-8.1); one of the REC's status.bundledDatabaseVersions. Default: the newest Redis. "
        "latest (or major): the newest Redis the cluster bundles, followed when a new image brings a newer "
        "one. "
        "Raising it within the same engine upgrades the database in place, replicas first (replicated "
        "databases only; a downgrade or a move between Redis and Valkey is refused); status.version shows "
        "what every shard runs.",
    )
    backup: RedbBackup | None = Field(
        default=None,
        description="Periodic backups by the cluster to S3-compatible storage (s3) or a directory mounted "
        "on the nodes (mount): one at creation, then every `interval` hours; status.backupInfo shows how "
        "they go.",
    )


class InternalEndpoint(ApiModel):
    host: str | None = None
    port: int | None = None


class BackupInfo(ApiModel):
    """How the scheduled backups go (the bdb's backup_status, last_backup_time, backup_failure_reason)."""

    backup_status: str | None = Field(default=None, description="exporting, succeeded or failed")
    last_backup_time: str | None = Field(default=None, description="when the last backup succeeded")
    last_failure_time: str | None = None
    backup_failure_reason: str | None = Field(default=None, description="Redis Enterprise's word: "
                                              "no-permission, wrong-file-path, general-error")
    backup_failure_message: str | None = Field(default=None, description="the last failure in a sentence")
    next_backup_time: str | None = Field(default=None, description="when the cluster runs the next one")
    failures_since_last_success: int | None = Field(default=None, description="retries wait 1, 2, 4 ... "
                                                    "minutes, at most the interval")


class RedisEnterpriseDatabaseStatus(OpenApiModel):
    database_uid: str | None = Field(default=None, alias="databaseUID")
    status: DatabaseStatus | None = None
    spec_status: SpecStatus | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    internal_endpoints: list[InternalEndpoint] | None = None
    shard_statuses: dict[str, int] | None = None
    last_action_uid: str | None = None
    last_action_status: str | None = None
    redis_enterprise_cluster: str | None = None
    version: str | None = None
    created_time: str | None = None
    last_updated: str | None = None
    backup_info: BackupInfo | None = None


class RedisEnterpriseDatabase(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta
    spec: RedisEnterpriseDatabaseSpec = Field(default_factory=RedisEnterpriseDatabaseSpec)
    status: RedisEnterpriseDatabaseStatus | None = None

    @property
    def cluster_name(self) -> str | None:
        """The REC named by the spec (None: the REC of the namespace)."""
        reference = self.spec.redis_enterprise_cluster
        return reference.name if reference is not None else None

    @property
    def secret_name(self) -> str:
        return self.spec.database_secret_name or database_secret_name(self.metadata.name)
