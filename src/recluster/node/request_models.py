"""Request models: what the REST API accepts. Pure: no I/O. They refuse unknown fields and wrong
types (strict), so bad input is refused before anything is changed; rules that need the cluster's
state live in `validation.py`. The bdb fields' values and limits are bdb_fields.py."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from cryptography.x509 import load_pem_x509_certificate
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recluster.api.field_errors import DNS1123_SUBDOMAIN
from recluster.api.ports import SENTINEL_TLS_PORT
from recluster.api.rec import MAX_SLAVE_HA_GRACE_PERIOD_S
from recluster.api.redb import REPLICA_SSL_REFUSED
from recluster.node.bdb_fields import (
    BDB_NAME_RE,
    DB_PORT_MAX,
    DB_PORT_MIN,
    MAX_BACKUP_INTERVAL_S,
    MAX_CLIENT_CERTS,
    MAX_EXTERNAL_ADDRESSES,
    MAX_INT64,
    MAX_ROLE_PERMISSIONS,
    MIN_BACKUP_INTERVAL_S,
    RESERVED_NAMES,
    AofPolicy,
    ClientCert,
    DataPersistence,
    EvictionPolicy,
    SnapshotRule,
    Switch,
    TlsMode,
)
from recluster.node.model_base import Strict
from recluster.node.users import RolePermission


def _dns_name(text: str) -> bool:
    """A lower-case DNS name (Kubernetes' DNS-1123 subdomain rule, labels of at most 63)."""
    return (len(text) <= 253 and DNS1123_SUBDOMAIN.fullmatch(text) is not None
            and all(len(label) <= 63 for label in text.split(".")))


def _tls_mode(value: object) -> object:
    if value == "replica_ssl":
        raise ValueError(REPLICA_SSL_REFUSED)
    return value


def _client_certs(value: object) -> object:
    """Each listed client certificate parses as one PEM X.509 certificate (the error names which)."""
    if isinstance(value, list):
        for index, entry in enumerate(value):
            text = entry.client_cert if isinstance(entry, ClientCert) else None
            if text is None:
                continue
            try:
                load_pem_x509_certificate(text.encode())
            except ValueError:
                raise ValueError(f"[{index}].client_cert is not a PEM X.509 certificate") from None
    return value


def _external_addresses(value: object) -> object:
    """Each entry an IP address or a lower-case DNS name (RFC 1123), as a certificate can name it; the
    error names which entry and why."""
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if not isinstance(entry, str):
                continue
            try:
                ipaddress.ip_address(entry)
            except ValueError:
                if not _dns_name(entry):
                    raise ValueError(f"[{index}] '{entry[:80]}' is neither an IP address nor a lower-case "
                                     "DNS name (RFC 1123: labels of a-z 0-9 -, at most 253 characters)"
                                     ) from None
        return list(dict.fromkeys(value))
    return value


class BdbCreate(Strict):
    """Body of POST /v1/bdbs."""

    # the rules are checked by the validators below (for their messages) and documented in the schema
    name: str = Field(json_schema_extra={"pattern": f"^{BDB_NAME_RE.pattern}$"})
    memory_size: int = Field(ge=0, le=MAX_INT64, description="bytes; 0 means no limit")
    uid: int | None = Field(default=None, ge=1, le=MAX_INT64)
    type: Literal["redis"] = "redis"
    port: int | None = Field(default=None, json_schema_extra={"minimum": DB_PORT_MIN, "maximum": DB_PORT_MAX},
                             description="default: the first free port")
    replication: bool = False
    shards_count: int = Field(default=1, ge=1)
    data_persistence: DataPersistence = "disabled"
    aof_policy: AofPolicy = "appendfsync-every-sec"
    snapshot_policy: list[SnapshotRule] = Field(default_factory=list)
    eviction_policy: EvictionPolicy = "volatile-lru"
    authentication_redis_pass: str | None = None
    tls_mode: TlsMode = Field(default="disabled", description="enabled: the database's port speaks TLS "
                              "only, and its shards replicate over TLS")
    enforce_client_authentication: Switch = Field(
        default="enabled", description="with tls_mode enabled and client certificates listed: clients must "
        "present one of them (or one signed by a listed CA)")
    authentication_ssl_client_certs: list[ClientCert] = Field(default_factory=list,
                                                              max_length=MAX_CLIENT_CERTS)
    default_user: bool = Field(default=True, description="false: the default user is off, only the "
                               "users of roles_permissions connect")
    roles_permissions: list[RolePermission] = Field(default_factory=list, max_length=MAX_ROLE_PERMISSIONS)
    redis_version: str | None = Field(default=None, max_length=32, description="the engine: major.minor "
                                      "for Redis, valkey-major.minor for Valkey (GET /v1/nodes "
                                      "supported_database_versions); default: the newest Redis")
    backup: bool = Field(default=False, description="back the database up every backup_interval to "
                         "backup_location, run by the cluster (a first backup at once)")
    backup_interval: int | None = Field(default=None, ge=MIN_BACKUP_INTERVAL_S, le=MAX_BACKUP_INTERVAL_S,
                                        description="seconds between backups (default a day)")
    backup_location: dict[str, Any] | None = Field(default=None, description="the export_location object "
                                                   "(type s3 or mount_point); never shown back")

    _tls = field_validator("tls_mode", mode="before")(_tls_mode)
    _certs = field_validator("authentication_ssl_client_certs")(_client_certs)

    @field_validator("name")
    @classmethod
    def _name_charset(cls, value: str) -> str:
        if not BDB_NAME_RE.fullmatch(value):
            raise ValueError("must be 1-63 characters of A-Z a-z 0-9 . _ -")
        if value in RESERVED_NAMES:
            raise ValueError(f"'{value}' is reserved for the cluster's configuration store")
        return value

    @field_validator("port")
    @classmethod
    def _port_range(cls, value: int | None) -> int | None:
        if value is not None and not DB_PORT_MIN <= value <= DB_PORT_MAX:
            raise ValueError(f"must be in {DB_PORT_MIN}-{DB_PORT_MAX}")
        return value


class BdbUpdate(Strict):
    """Body of PUT /v1/bdbs/{uid}: a partial bdb. `name` and `port` may be sent but not changed."""

    name: str | None = None
    port: int | None = None
    memory_size: int | None = Field(default=None, ge=0, le=MAX_INT64)
    replication: bool | None = None
    shards_count: int | None = Field(default=None, ge=1)
    data_persistence: DataPersistence | None = None
    aof_policy: AofPolicy | None = None
    snapshot_policy: list[SnapshotRule] | None = None
    eviction_policy: EvictionPolicy | None = None
    authentication_redis_pass: str | None = None
    tls_mode: TlsMode | None = None
    enforce_client_authentication: Switch | None = None
    authentication_ssl_client_certs: list[ClientCert] | None = Field(default=None,
                                                                     max_length=MAX_CLIENT_CERTS)
    default_user: bool | None = None
    roles_permissions: list[RolePermission] | None = Field(default=None, max_length=MAX_ROLE_PERMISSIONS)
    redis_version: str | None = Field(default=None, max_length=32, description="a higher version of the "
                                      "same engine upgrades the database in place (replicas first, then a "
                                      "failover, then the old master); see docs/databases.md")
    external_addr: list[str] | None = Field(default=None, max_length=MAX_EXTERNAL_ADDRESSES, description=(
        "recluster's: the addresses outside the cluster the database is reached at (the services "
        "rigger sets its LoadBalancer Services' addresses); its TLS shards' certificates name them"))
    backup: bool | None = None
    backup_interval: int | None = Field(default=None, ge=MIN_BACKUP_INTERVAL_S, le=MAX_BACKUP_INTERVAL_S)
    backup_location: dict[str, Any] | None = None

    _tls = field_validator("tls_mode", mode="before")(_tls_mode)
    _certs = field_validator("authentication_ssl_client_certs")(_client_certs)
    _external = field_validator("external_addr")(_external_addresses)


class Credentials(Strict):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class BootstrapCluster(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    nodes: list[str] = Field(default_factory=list)
    wait_command: bool | None = None


class BootstrapIdentity(BaseModel):
    model_config = ConfigDict(extra="allow")
    addr: str | None = None
    name: str | None = None


class BootstrapNode(BaseModel):
    model_config = ConfigDict(extra="allow")
    identity: BootstrapIdentity | None = None
    paths: dict[str, str] | None = None


class BootstrapRequest(BaseModel):
    """Body of POST /v1/bootstrap/{create_cluster,join_cluster}. Unknown top-level fields are refused;
    `node` accepts the public shape's extra keys (paths, limits) that this cluster ignores."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["create_cluster", "join_cluster"] | None = None
    cluster: BootstrapCluster = Field(default_factory=BootstrapCluster)
    node: BootstrapNode | None = None
    credentials: Credentials | None = None  # default: the node's --credentials-file
    license: str | None = None
    dns_suffixes: list[str] | None = None


class LicenseUpdate(Strict):
    license: str


class PolicyUpdate(Strict):
    """PUT /v1/cluster/policy: the cluster policy settings recluster acts on (Redis Enterprise's names);
    any other setting is refused by name."""

    slave_ha: bool | None = None
    slave_ha_grace_period: int | None = Field(default=None, ge=0, le=MAX_SLAVE_HA_GRACE_PERIOD_S)


class JoinRequest(Strict):
    """Internal: a node asks the leader to admit it."""

    name: str = Field(min_length=1)
    addr: str = Field(min_length=1)
    api_port: int
    ccs_port: int
    sentinel_port: int
    sentinel_tls_port: int = SENTINEL_TLS_PORT
    metrics_port: int
    total_memory: int = 0
    cores: int = 1
