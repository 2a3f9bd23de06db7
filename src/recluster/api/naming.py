"""Names several parts must agree on, stated once: the labels of the node pods, the database
Services' names (REC `servicesRiggerSpec.databaseServiceType` and `serviceNaming`) and the
database secret's `service_names` key. The rigger creates the Services under these names, the
operator reports the first one in the REDB status. Pure: no I/O."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

# the labels of every node pod (the operator sets them, the rigger selects by them)
APP_LABEL = "app"
APP = "redis-enterprise"
CLUSTER_LABEL = "redis.io/cluster"
ROLE_LABEL = "redis.io/role"
NODE_ROLE = "node"
NODE_CONTAINER = "redis-enterprise-node"  # the node pod's container: the node daemon and its processes
# the label the rigger puts on the node pod holding a database's master: redis.io/bdb-<uid>
BDB_LABEL_PREFIX = "redis.io/bdb-"


# on every Service and EndpointSlice the rigger makes for a database: the database's uid
BDB_UID_LABEL = "redis.io/bdb-uid"


def bdb_label(uid: int | str) -> str:
    return f"{BDB_LABEL_PREFIX}{uid}"

# databaseServiceType: which Services each database gets
CLUSTER_IP, HEADLESS, LOAD_BALANCER = "cluster_ip", "headless", "load_balancer"
SERVICE_TYPES = (CLUSTER_IP, HEADLESS, LOAD_BALANCER)
DEFAULT_SERVICE_TYPES = (CLUSTER_IP, HEADLESS)
# serviceNaming: a Service is named after the database or after its port
BDB_NAME, REDIS_PORT = "bdb_name", "redis-port"
_SUFFIX = {CLUSTER_IP: "", HEADLESS: "-headless", LOAD_BALANCER: "-load-balancer"}

# the database secret's key the rigger keeps (comma-separated Service names)
SERVICE_NAMES_KEY = "service_names"


def parse_service_types(value: str) -> tuple[str, ...]:
    """`cluster_ip,headless` -> ("cluster_ip", "headless"); unknown entries are refused."""
    types = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    unknown = [t for t in types if t not in SERVICE_TYPES]
    if unknown:
        raise ValueError(
            f"databaseServiceType: unknown {', '.join(unknown)} (use {', '.join(SERVICE_TYPES)})"
        )
    return types or DEFAULT_SERVICE_TYPES


def service_name(db_name: str, port: int, service_type: str, naming: str) -> str:
    base = f"redis-{port}" if naming == REDIS_PORT else db_name
    return base + _SUFFIX[service_type]


def service_names(db_name: str, port: int, types: Sequence[str], naming: str) -> list[str]:
    """The database's Service names, in the order of `types` (the first is what clients use)."""
    return [service_name(db_name, port, t, naming) for t in types]


def service_names_patch(names: list[str]) -> dict[str, Any]:
    """The rigger's merge patch of the database secret's `service_names` (comma-separated, in a
    stable order)."""
    return {"data": {SERVICE_NAMES_KEY: base64.b64encode(",".join(names).encode()).decode()}}
