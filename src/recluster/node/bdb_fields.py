"""The vocabulary of a bdb's fields, shared by the REST API's request bodies (request_models.py) and
the record the configuration store keeps (records.py): the allowed values, the limits and the small
nested shapes. Pure."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from recluster.api.redb import DATABASE_PORT_RANGE
from recluster.node.model_base import Strict

BDB_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,63}")  # fullmatch: `$` would let "name\n" through
DB_PORT_MIN = DATABASE_PORT_RANGE.start
DB_PORT_MAX = DATABASE_PORT_RANGE.stop - 1
RESERVED_NAMES = frozenset({"ccs"})  # the configuration store's sentinel name
MAX_INT64 = 2**63 - 1  # memory sizes and uids: what a signed 64-bit integer (Redis, Go, Kubernetes) holds
MAX_INT32 = 2**31 - 1  # snapshot rules: Redis keeps a rule's write count in a C int

EvictionPolicy = Literal[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
]
DataPersistence = Literal["disabled", "aof", "snapshot"]
AofPolicy = Literal["appendfsync-every-sec", "appendfsync-always"]
BdbStatus = Literal["pending", "active", "active-change-pending", "delete-pending", "creation-failed"]
TlsMode = Literal["disabled", "enabled"]
Switch = Literal["enabled", "disabled"]
MAX_CLIENT_CERTS = 100
# external_addr (recluster's): the addresses outside the cluster a database is reached at
MAX_EXTERNAL_ADDRESSES = 16
MAX_ROLE_PERMISSIONS = 256


class SnapshotRule(Strict):
    secs: int = Field(ge=1, le=MAX_INT32)
    writes: int = Field(ge=1, le=MAX_INT32)


class ClientCert(Strict):
    """One entry of a bdb's `authentication_ssl_client_certs` (the public shape)."""

    client_cert: str = Field(min_length=1, max_length=16384, description="PEM certificate")


# scheduled backups: an hour at least (Redis Enterprise's shortest), four weeks at most
MIN_BACKUP_INTERVAL_S = 3600
MAX_BACKUP_INTERVAL_S = 28 * 24 * 3600
DEFAULT_BACKUP_INTERVAL_S = 24 * 3600
