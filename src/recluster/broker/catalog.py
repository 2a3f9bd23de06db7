"""The broker's catalog: one service offering, plans from configuration (or the shipped defaults),
and the plan parameter schema with its validator. Pure: no I/O (the CLI reads the file)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from recluster.api.access import BUILTIN_REDIS_ACLS, name_problem
from recluster.api.quantity import QuantityError, format_memory_size, parse_memory_size
from recluster.api.redb import EvictionPolicy, Persistence, persistence_fields

# CLI-friendly names (spec: alphanumerics, periods and hyphens, no spaces)
CLI_NAME_RE = re.compile(r"^[A-Za-z0-9.-]{1,63}$")
# Names the cluster accepts for a database (they are Sentinel master names)
BDB_NAME_RE = re.compile(r"[^A-Za-z0-9._-]")
# Characters outside those the cluster accepts in a user's name (its Redis ACL username)
NOT_USER_NAME_RE = re.compile(r"[^A-Za-z0-9._@+-]")
# The Redis ACL every binding of a plan gets unless the plan names another: Redis Enterprise's
# predefined "Full Access" (+@all ~*), present in every cluster ("Read Only" is +@read ~*)
DEFAULT_REDIS_ACL = BUILTIN_REDIS_ACLS[1][0]
MIN_MEMORY = 1024 * 1024  # a smaller maxmemory leaves Redis unable to store anything useful
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-04/schema#"
# A stable namespace for ids derived from names: the same cluster always publishes the same ids.
ID_NAMESPACE = uuid.UUID("6f1c8a52-6a3e-4c5e-9d8e-2b0c6d1f4e7a")

PERSISTENCE_VALUES = [p.value for p in Persistence]
EVICTION_VALUES = [e.value for e in EvictionPolicy]
DEFAULT_EVICTION = EvictionPolicy.VOLATILE_LRU.value
# The parameters a user may pass on provision and update; everything else is refused.
INSTANCE_PARAMETERS: dict[str, dict[str, Any]] = {
    "eviction_policy": {
        "description": "Redis maxmemory policy when the database is full",
        "type": "string",
        "enum": EVICTION_VALUES,
    },
    "persistence": {
        "description": "Overrides the plan's persistence",
        "type": "string",
        "enum": PERSISTENCE_VALUES,
    },
}


class CatalogError(ValueError):
    """A configuration that cannot make a valid catalog; the message names the field."""


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    description: str
    memory_size: int  # bytes
    replication: bool
    persistence: str  # a Persistence value
    free: bool = True
    maintenance_version: str | None = None
    # the cluster's Redis ACL (by name) that each binding's user gets on the database
    redis_acl: str = DEFAULT_REDIS_ACL

    def instance_schema(self) -> dict[str, Any]:
        return {
            "$schema": JSON_SCHEMA_DRAFT,
            "type": "object",
            "properties": {name: dict(rule) for name, rule in INSTANCE_PARAMETERS.items()},
            "additionalProperties": False,
        }

    def catalog_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "free": self.free,
            "bindable": True,
            "plan_updateable": True,
            "metadata": {
                "memory": format_memory_size(self.memory_size),
                "memory_bytes": self.memory_size,
                "replication": self.replication,
                "persistence": self.persistence,
                "redis_acl": self.redis_acl,
                "bullets": [
                    f"{format_memory_size(self.memory_size)} memory",
                    "replicated on two nodes, Sentinel failover" if self.replication else "single shard",
                    f"persistence: {self.persistence}",
                    f"each binding its own user, with the Redis ACL '{self.redis_acl}'",
                ],
            },
            "schemas": {
                "service_instance": {
                    "create": {"parameters": self.instance_schema()},
                    "update": {"parameters": self.instance_schema()},
                },
                "service_binding": {
                    "create": {"parameters": {"$schema": JSON_SCHEMA_DRAFT, "type": "object",
                                              "properties": {}, "additionalProperties": False}},
                },
            },
        }
        if self.maintenance_version:
            entry["maintenance_info"] = {"version": self.maintenance_version}
        return entry


@dataclass(frozen=True)
class Catalog:
    service_id: str
    service_name: str
    description: str
    plans: tuple[Plan, ...] = field(default_factory=tuple)

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def document(self) -> dict[str, Any]:
        """The body of GET /v2/catalog."""
        return {"services": [{
            "id": self.service_id,
            "name": self.service_name,
            "description": self.description,
            "tags": ["redis", "key-value", "recluster"],
            "bindable": True,
            "instances_retrievable": True,
            "bindings_retrievable": True,
            "allow_context_updates": False,
            "plan_updateable": True,
            "metadata": {"displayName": "Redis (recluster)", "providerDisplayName": "recluster"},
            "plans": [p.catalog_entry() for p in self.plans],
        }]}


DEFAULT_PLANS: list[dict[str, Any]] = [
    {"name": "small", "description": "100MB, one shard, no persistence",
     "memory": "100MB", "replication": False, "persistence": "disabled"},
    {"name": "medium", "description": "1GB, replicated with Sentinel failover, AOF every second",
     "memory": "1GB", "replication": True, "persistence": "aofEverySecond"},
    {"name": "large", "description": "4GB, replicated with Sentinel failover, AOF every second",
     "memory": "4GB", "replication": True, "persistence": "aofEverySecond"},
]

_PLAN_KEYS = {"id", "name", "description", "memory", "replication", "persistence", "free",
              "maintenance_version", "redis_acl"}
_TOP_KEYS = {"service", "plans"}
_SERVICE_KEYS = {"id", "name", "description"}


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(parts)))


def _plan(raw: object, index: int, service_id: str) -> Plan:
    where = f"plans[{index}]"
    if not isinstance(raw, dict):
        raise CatalogError(f"'{where}': must be a mapping")
    unknown = sorted(set(raw) - _PLAN_KEYS)
    if unknown:
        raise CatalogError(f"'{where}.{unknown[0]}': unknown field (known: {', '.join(sorted(_PLAN_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not CLI_NAME_RE.match(name):
        raise CatalogError(f"'{where}.name': required, 1-63 characters of A-Z a-z 0-9 . -")
    description = raw.get("description", f"{name} Redis database")
    if not isinstance(description, str) or not description:
        raise CatalogError(f"'{where}.description': must be a non-empty string")
    memory = raw.get("memory")
    try:
        memory_size = parse_memory_size(str(memory)) if memory is not None else -1
    except QuantityError as exc:
        raise CatalogError(f"'{where}.memory': {exc}") from exc
    if memory_size < MIN_MEMORY:
        raise CatalogError(f"'{where}.memory': required, at least 1MB (e.g. 100MB, 1GB)")
    replication = raw.get("replication", False)
    if not isinstance(replication, bool):
        raise CatalogError(f"'{where}.replication': must be true or false")
    persistence = raw.get("persistence", "disabled")
    if persistence not in PERSISTENCE_VALUES:
        raise CatalogError(f"'{where}.persistence': must be one of {', '.join(PERSISTENCE_VALUES)}")
    free = raw.get("free", True)
    if not isinstance(free, bool):
        raise CatalogError(f"'{where}.free': must be true or false")
    plan_id = raw.get("id", derived_id(service_id, name))
    if not isinstance(plan_id, str) or not plan_id:
        raise CatalogError(f"'{where}.id': must be a non-empty string")
    version = raw.get("maintenance_version")
    if version is not None and (not isinstance(version, str) or not version):
        raise CatalogError(f"'{where}.maintenance_version': must be a non-empty string")
    redis_acl = raw.get("redis_acl", DEFAULT_REDIS_ACL)
    if not isinstance(redis_acl, str) or name_problem(redis_acl):
        raise CatalogError(f"'{where}.redis_acl': the name of one of the cluster's Redis ACLs (1-64 "
                           "characters), e.g. 'Full Access' or 'Read Only'")
    return Plan(id=plan_id, name=name, description=description, memory_size=memory_size,
                replication=replication, persistence=str(persistence), free=free, maintenance_version=version,
                redis_acl=redis_acl.strip())


def build_catalog(config: dict[str, Any] | None, cluster: str = "rec", namespace: str = "default") -> Catalog:
    """The catalog from a configuration mapping ({service: {...}, plans: [...]}); absent parts take the
    shipped defaults. Ids not given are derived from the cluster's name, so they never change."""
    config = dict(config or {})
    unknown = sorted(set(config) - _TOP_KEYS)
    if unknown:
        raise CatalogError(f"'{unknown[0]}': unknown field (known: plans, service)")
    service = config.get("service") or {}
    if not isinstance(service, dict):
        raise CatalogError("'service': must be a mapping")
    unknown = sorted(set(service) - _SERVICE_KEYS)
    if unknown:
        raise CatalogError(f"'service.{unknown[0]}': unknown field (known: description, id, name)")
    service_id = service.get("id", derived_id("service", namespace, cluster))
    name = service.get("name", f"redis-{cluster}")
    if not isinstance(name, str) or not CLI_NAME_RE.match(name):
        raise CatalogError("'service.name': 1-63 characters of A-Z a-z 0-9 . -")
    if not isinstance(service_id, str) or not service_id:
        raise CatalogError("'service.id': must be a non-empty string")
    description = service.get("description", f"Redis databases on the recluster cluster '{cluster}'")
    if not isinstance(description, str) or not description:
        raise CatalogError("'service.description': must be a non-empty string")
    raw_plans = config.get("plans", DEFAULT_PLANS)
    if not isinstance(raw_plans, list) or not raw_plans:
        raise CatalogError("'plans': must be a non-empty list")
    plans = tuple(_plan(raw, i, service_id) for i, raw in enumerate(raw_plans))
    for kind in ("name", "id"):
        seen: set[str] = set()
        for i, plan in enumerate(plans):
            value = getattr(plan, kind)
            if value in seen:
                raise CatalogError(f"'plans[{i}].{kind}': '{value}' is used by another plan")
            seen.add(value)
    if service_id in {p.id for p in plans}:
        raise CatalogError("'service.id': must differ from every plan id")
    return Catalog(service_id=service_id, service_name=name, description=description, plans=plans)


def validate_parameters(parameters: object, schema: dict[str, Any]) -> list[str]:
    """Problems of `parameters` against a plan schema (the subset of JSON schema this catalog
    publishes: an object, typed properties with enums, additionalProperties false). Empty = valid.
    Messages name the field and the rule, never the value."""
    if parameters is None:
        return []
    if not isinstance(parameters, dict):
        return ["'parameters': must be an object"]
    problems: list[str] = []
    properties: dict[str, Any] = schema.get("properties", {})
    for key in sorted(parameters, key=str):
        rule = properties.get(key)
        if rule is None:
            if schema.get("additionalProperties", True) is False:
                known = ", ".join(sorted(properties)) or "none"
                problems.append(f"'parameters.{key}': unknown parameter (known: {known})")
            continue
        value = parameters[key]
        expected = rule.get("type")
        if expected == "string" and not isinstance(value, str):
            problems.append(f"'parameters.{key}': must be a string")
        elif expected == "boolean" and not isinstance(value, bool):
            problems.append(f"'parameters.{key}': must be true or false")
        elif "enum" in rule and value not in rule["enum"]:
            problems.append(f"'parameters.{key}': must be one of {', '.join(map(str, rule['enum']))}")
    return problems


def bdb_settings(plan: Plan, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The bdb fields a plan and its (validated) parameters ask for (POST/PUT /v1/bdbs)."""
    params = parameters or {}
    persistence = str(params.get("persistence", plan.persistence))
    settings: dict[str, Any] = {
        "memory_size": plan.memory_size,
        "replication": plan.replication,
        "eviction_policy": str(params.get("eviction_policy", DEFAULT_EVICTION)),
    }
    # a PUT replaces the settings: a snapshot rule left from an earlier plan must not stay behind
    settings.update({"snapshot_policy": [], **persistence_fields(Persistence(persistence))})
    return settings


def database_name(instance_id: str) -> str:
    """The cluster database (and Sentinel master) name of an instance: readable, within the cluster's
    charset and 63 characters, and unique per instance id (a digest keeps sanitized ids apart)."""
    digest = hashlib.sha256(instance_id.encode()).hexdigest()[:10]
    clean = BDB_NAME_RE.sub("-", instance_id).strip("-.")[:40]
    return f"osb-{clean}-{digest}" if clean else f"osb-{digest}"


def binding_user_name(instance_id: str, binding_id: str) -> str:
    """The name of a binding's user (its Redis ACL username) and of its role on the cluster:
    readable, within the cluster's charset and 64 characters, the same for the same binding every
    time (so a retry or a restart finds what an earlier attempt made), and unique per binding (a
    digest of both ids keeps sanitized or case-different ids apart)."""
    digest = hashlib.sha256(f"{instance_id}/{binding_id}".encode()).hexdigest()[:10]
    clean = NOT_USER_NAME_RE.sub("-", binding_id).strip("-.@+_")[:40]
    return f"osb-{clean}-{digest}" if clean else f"osb-{digest}"
