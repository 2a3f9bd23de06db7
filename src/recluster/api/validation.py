"""The one validator of REC and REDB specs, used by the reconcile loop and the admission webhook alike.

Every function is pure: it takes the object bodies (as read from the apiserver or an AdmissionReview)
and the facts it needs about the world as arguments, and returns a list of `FieldError`s, empty when
the object is valid. A message names the rule and what to do; it never contains a secret value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from recluster.api.common import ResourceRequirements
from recluster.api.naming import APP_LABEL, CLUSTER_LABEL, ROLE_LABEL
from recluster.api.quantity import (
    QuantityError,
    format_bytes,
    parse_memory_size,
    parse_quantity,
)
from recluster.api.rec import KIND as REC_KIND
from recluster.api.rec import RedisEnterpriseCluster, RedisEnterpriseClusterSpec
from recluster.api.redb import (
    DATABASE_PORT_RANGE,
    MAX_SHARD_COUNT,
    MIN_MEMORY_SIZE,
    RedisEnterpriseDatabase,
    RedisEnterpriseDatabaseSpec,
)
from recluster.api.redb import KIND as REDB_KIND
from recluster.api.support import TABLES, SpecField, Support, parents

# The REC name becomes the name of Services ("<rec>-services-rigger" is the longest, 16 more
# characters) and of the StatefulSet, whose pods' names are host names: a DNS-1035 label of 63
# characters at most for all of them.
MAX_REC_NAME_LENGTH = 63 - len("-services-rigger")
# The rigger names a database's Services "<redb>", "<redb>-headless" and "<redb>-load-balancer".
MAX_REDB_NAME_LENGTH = 63 - len("-load-balancer")
MIN_NODES = 3
# Label keys the operator owns: its selectors depend on them, so extraLabels may not change them.
RESERVED_LABEL_KEYS = (APP_LABEL, CLUSTER_LABEL, ROLE_LABEL)
RESERVED_LABEL_PREFIX = "redis.io/"

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_UNION_TAGS = {"str", "int", "float", "bool"}

ResourceT = TypeVar("ResourceT", RedisEnterpriseCluster, RedisEnterpriseDatabase)


@dataclass(frozen=True)
class FieldError:
    """One broken rule. `field` is the path in the object (`spec.nodes`), `rule` a stable id for
    tests and metrics, `message` a sentence for a human."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SpecInvalid(ValueError):
    """Raised by `check_rec`/`check_redb`; carries every error, not just the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(describe(errors))
        self.errors = errors


def plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (kopf hands bodies over as read-only mapping views)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _schema_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    found: dict[str, FieldError] = {}
    for detail in error.errors(include_input=False, include_url=False):
        path = prefix
        for part in detail["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part not in _UNION_TAGS and "[" not in part:
                path += f".{part}"
        if detail["type"] == "extra_forbidden":
            message = "unknown field (a typo? see `kubectl explain`)"
        else:
            message = detail["msg"].removeprefix("Value error, ")
        path = path.lstrip(".")
        found.setdefault(path, FieldError(path, "schema", message))
    return list(found.values())


def _name_errors(name: str | None, max_length: int, kind: str) -> list[FieldError]:
    if not name:
        return [FieldError("metadata.name", "name", f"a {kind} needs a name")]
    if len(name) > max_length or not _DNS1035_LABEL.match(name):
        return [
            FieldError(
                "metadata.name",
                "name",
                f"{name!r} must be a DNS-1035 label (lower-case letters, digits and '-', starting with a "
                f"letter) of at most {max_length} characters, because the objects of the {kind} are named "
                "after it",
            )
        ]
    return []


def _parse(
    body: Mapping[str, Any], model: type[ResourceT], spec_model: type[BaseModel]
) -> tuple[ResourceT | None, list[FieldError]]:
    """The model of a body, or None and the schema errors of its spec. A status that does not parse
    is dropped: status is the operator's, never a reason to refuse a spec."""
    data = plain(body)
    try:
        data["spec"] = spec_model.model_validate(data.get("spec") or {})
    except ValidationError as error:
        return None, _schema_errors(error, "spec")
    data.setdefault("metadata", {}).setdefault("name", "")
    try:
        return model.model_validate(data), []
    except ValidationError:
        data.pop("status", None)
    try:
        return model.model_validate(data), []
    except ValidationError as error:  # metadata the apiserver would never send
        return None, _schema_errors(error, "")


def describe(issues: Iterable[FieldError]) -> str:
    """Issues as one message: what a refusal, a condition or an event says."""
    return "; ".join(str(issue) for issue in issues)


# A warning has the shape of an error: a field the operator accepts but does not act on.
FieldWarning = FieldError


def _at(spec: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(spec, Mapping) or key not in spec:
            return _MISSING
        spec = spec[key]
    return spec


_MISSING = object()


def _not_implemented(value: Any) -> str:
    """"enabled is not implemented yet": a refused scalar as the user wrote it (never a block: a
    block may name secrets)."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40):
        shown = json.dumps(value).strip('"')
        return f"{shown} is not implemented yet"
    return "not implemented yet"


def _present(
    table: Mapping[str, SpecField], blocks: set[str], spec: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Any, SpecField | None]]:
    """(path, value, classification or None) of every key the spec sets, inside listed blocks too."""
    for key, value in spec.items():
        path = f"{prefix}{key}"
        if path in blocks and isinstance(value, Mapping):
            yield from _present(table, blocks, value, f"{path}.")
        else:
            yield path, value, table.get(path)


def _field_review(
    kind: str, new: Mapping[str, Any], old: Mapping[str, Any] | None
) -> tuple[list[FieldError], list[FieldWarning]]:
    """The contract's fields a spec sets that the operator does not act on (recluster.api.support):
    refused values (errors) unless `old`, the spec accepted before, had the same value (a warning
    then), ignored fields and unknown fields (warnings)."""
    spec = plain(new).get("spec") or {}
    old_spec = (plain(old).get("spec") or {}) if old is not None else None
    if not isinstance(spec, Mapping):
        return [], []  # the schema says what is wrong
    fields = TABLES[kind]
    table = {field.path: field for field in fields}
    errors: list[FieldError] = []
    warnings: list[FieldWarning] = []
    for path, value, known in _present(table, parents(fields), spec):
        where = f"spec.{path}"
        if known is None:
            warnings.append(
                FieldWarning(where, "unknown-field", f"unknown field, not part of the {kind} API (a typo?); "
                             "it has no effect")
            )
        elif known.support == Support.IGNORED:
            warnings.append(FieldWarning(where, "ignored", f"ignored: {known.reason}"))
        elif known.support == Support.REFUSED and not known.harmless(value):
            if old_spec is not None and _at(old_spec, path) == value:
                warnings.append(
                    FieldWarning(where, "not-implemented", f"{_not_implemented(value)} (kept because it "
                                 f"was accepted before): {known.reason}")
                )
            else:
                errors.append(
                    FieldError(where, "not-implemented", f"{_not_implemented(value)}: {known.reason}")
                )
    return errors, warnings


def rec_warnings(new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[FieldWarning]:
    """The fields of a REC the operator accepts but does not act on: ignored and unknown fields, and
    refused values kept because `old` (the spec accepted before) had them. For the admission
    response, the SpecValid condition and a Warning event."""
    return _field_review(REC_KIND, new, old)[1]


def redb_warnings(new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[FieldWarning]:
    """The same for a REDB."""
    return _field_review(REDB_KIND, new, old)[1]


# --- REC -------------------------------------------------------------------------------------


def parse_rec(body: Mapping[str, Any]) -> tuple[RedisEnterpriseCluster | None, list[FieldError]]:
    """The REC model of a body, or None and the schema errors."""
    return _parse(body, RedisEnterpriseCluster, RedisEnterpriseClusterSpec)


def validate_rec(new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """Every broken rule of a REC. `old` is the last spec the operator accepted (an update), or None
    (a creation); rules about changes apply only when it is given."""
    return _validate_rec(new, old)[1]


def check_rec(new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> RedisEnterpriseCluster:
    """The REC model of a valid body; raises SpecInvalid with every error otherwise."""
    rec, errors = _validate_rec(new, old)
    if errors or rec is None:
        raise SpecInvalid(errors)
    return rec


def _validate_rec(
    new: Mapping[str, Any], old: Mapping[str, Any] | None
) -> tuple[RedisEnterpriseCluster | None, list[FieldError]]:
    errors = _name_errors(plain(new).get("metadata", {}).get("name"), MAX_REC_NAME_LENGTH, "cluster")
    errors += _field_review(REC_KIND, new, old)[0]
    rec, schema_errors = parse_rec(new)
    errors += schema_errors
    if rec is None:
        return None, errors
    errors += _rec_rules(rec.spec)
    if old is not None:
        previous, _ = parse_rec(old)
        if previous is not None:  # an old spec that never was valid constrains nothing
            if previous.name and previous.name != rec.name:
                errors.append(
                    FieldError(
                        "metadata.name",
                        "immutable",
                        f"cannot change after creation (was {previous.name!r}): every object of the "
                        "cluster is named after it",
                    )
                )
            errors += _rec_changes(previous.spec, rec.spec)
    return rec, errors


def _rec_rules(spec: RedisEnterpriseClusterSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    if spec.nodes < MIN_NODES or spec.nodes % 2 == 0:
        errors.append(
            FieldError(
                "spec.nodes",
                "odd-nodes",
                f"must be an odd number of at least {MIN_NODES} (got {spec.nodes}): a cluster needs a strict "
                "majority of its nodes to agree, and an even count adds a node without adding tolerance",
            )
        )
    if spec.license and spec.license_secret_name:
        errors.append(
            FieldError(
                "spec.licenseSecretName",
                "license-xor-secret",
                "license and licenseSecretName are mutually exclusive: set only one of them",
            )
        )
    if spec.ui_service_type == "ExternalName":
        errors.append(
            FieldError(
                "spec.uiServiceType",
                "ui-service-type",
                "ExternalName cannot route to the nodes' console: use ClusterIP, NodePort or LoadBalancer",
            )
        )
    errors += _resource_errors("spec.redisEnterpriseNodeResources", spec.redis_enterprise_node_resources)
    errors += _resource_errors(
        "spec.redisEnterpriseServicesRiggerResources", spec.redis_enterprise_services_rigger_resources
    )
    if spec.service_broker_spec is not None:
        errors += _resource_errors("spec.serviceBrokerSpec.resources", spec.service_broker_spec.resources)
    errors += _label_errors("spec.extraLabels", spec.extra_labels or {})
    if spec.persistence_enabled and spec.volume_size_bytes() < spec.node_memory_bytes():
        errors.append(
            FieldError(
                "spec.persistentSpec.volumeSize",
                "volume-size",
                f"{format_bytes(spec.volume_size_bytes())} is smaller than the node memory "
                f"({format_bytes(spec.node_memory_bytes())}): a snapshot of a full node would not fit "
                "(5x the memory is recommended)",
            )
        )
    return errors


def _resource_errors(path: str, resources: ResourceRequirements | None) -> list[FieldError]:
    """Requests may not exceed limits (the apiserver would refuse the pod, after the fact)."""
    if resources is None:
        return []
    errors: list[FieldError] = []
    limits = resources.limits or {}
    for name, request in (resources.requests or {}).items():
        if name in limits:
            try:
                too_big = parse_quantity(request) > parse_quantity(limits[name])
            except QuantityError:  # already reported by the schema
                continue
            if too_big:
                errors.append(
                    FieldError(
                        f"{path}.requests.{name}",
                        "request-within-limit",
                        f"request {request} is larger than the limit {limits[name]}",
                    )
                )
    return errors


def _label_errors(path: str, labels: Mapping[str, str]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in labels.items():
        if key in RESERVED_LABEL_KEYS or key.startswith(RESERVED_LABEL_PREFIX):
            errors.append(
                FieldError(
                    f"{path}.{key}",
                    "reserved-label",
                    f"the label {key!r} belongs to the operator (its selectors use it) and cannot be set",
                )
            )
            continue
        prefix, _, name = key.rpartition("/")
        valid_key = (
            0 < len(name) <= 63
            and _LABEL_NAME.match(name) is not None
            and (not prefix or (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.match(prefix) is not None))
        )
        if not valid_key:
            errors.append(FieldError(f"{path}.{key}", "label-syntax", f"{key!r} is not a valid label key"))
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(
                FieldError(
                    f"{path}.{key}",
                    "label-syntax",
                    f"{value!r} is not a valid label value (at most 63 letters, digits, '-', '_', '.')",
                )
            )
    return errors


def majority(nodes: int) -> int:
    return nodes // 2 + 1


def _rec_changes(old: RedisEnterpriseClusterSpec, new: RedisEnterpriseClusterSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    if new.nodes < majority(old.nodes):
        errors.append(
            FieldError(
                "spec.nodes",
                "scale-majority",
                f"scaling from {old.nodes} to {new.nodes} nodes in one step would lose the majority of "
                f"{majority(old.nodes)}: scale down to at least {majority(old.nodes)} first",
            )
        )
    if (old.cluster_credential_secret_name or None) != (new.cluster_credential_secret_name or None):
        errors.append(
            FieldError(
                "spec.clusterCredentialSecretName",
                "immutable",
                "cannot change after creation: the cluster keeps the credentials it was created with",
            )
        )
    if old.persistence_enabled != new.persistence_enabled:
        errors.append(
            FieldError(
                "spec.persistentSpec.enabled",
                "immutable",
                f"cannot change after creation (was {str(old.persistence_enabled).lower()}): the node "
                "volumes are part of the StatefulSet, which cannot gain or lose them",
            )
        )
    elif new.persistence_enabled:
        errors += _volume_changes(old, new)
    return errors


def _volume_changes(old: RedisEnterpriseClusterSpec, new: RedisEnterpriseClusterSpec) -> list[FieldError]:
    assert old.persistent_spec is not None and new.persistent_spec is not None
    errors: list[FieldError] = []
    old_class = old.persistent_spec.storage_class_name or None
    new_class = new.persistent_spec.storage_class_name or None
    if old_class != new_class:
        errors.append(
            FieldError(
                "spec.persistentSpec.storageClassName",
                "immutable",
                f"cannot change after creation (was {old_class or 'the default class'}): existing volumes "
                "cannot move to another storage class",
            )
        )
    old_size, new_size = old.volume_size_bytes(), new.volume_size_bytes()
    if new_size < old_size:
        errors.append(
            FieldError(
                "spec.persistentSpec.volumeSize",
                "volume-shrink",
                f"volumes cannot shrink from {format_bytes(old_size)} to {format_bytes(new_size)}"
                + (
                    ""
                    if new.persistent_spec.volume_size is not None
                    else " (volumeSize defaults to 5x the node "
                    f"memory: set volumeSize: {format_bytes(old_size)} to keep the current size)"
                ),
            )
        )
    elif new_size > old_size and not new.persistent_spec.enable_persistent_volume_resize:
        errors.append(
            FieldError(
                "spec.persistentSpec.volumeSize",
                "volume-resize-disabled",
                f"growing the volumes from {format_bytes(old_size)} to {format_bytes(new_size)} needs "
                "persistentSpec.enablePersistentVolumeResize: true (and a StorageClass that allows expansion)"
                + (
                    ""
                    if new.persistent_spec.volume_size is not None
                    else "; volumeSize defaults to 5x the node "
                    f"memory: set volumeSize: {format_bytes(old_size)} to keep the current size"
                ),
            )
        )
    return errors


# --- REDB ------------------------------------------------------------------------------------


def parse_redb(body: Mapping[str, Any]) -> tuple[RedisEnterpriseDatabase | None, list[FieldError]]:
    return _parse(body, RedisEnterpriseDatabase, RedisEnterpriseDatabaseSpec)


def validate_redb(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    cluster_exists: bool,
    ports_in_use: Iterable[int] = (),
) -> list[FieldError]:
    """Every broken rule of a REDB. `cluster_exists`: the REC it names (or the namespace's REC) exists;
    `ports_in_use`: the ports of the *other* databases of that cluster."""
    return _validate_redb(new, old, cluster_exists, ports_in_use)[1]


def check_redb(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    cluster_exists: bool,
    ports_in_use: Iterable[int] = (),
) -> RedisEnterpriseDatabase:
    """The REDB model of a valid body; raises SpecInvalid with every error otherwise."""
    redb, errors = _validate_redb(new, old, cluster_exists, ports_in_use)
    if errors or redb is None:
        raise SpecInvalid(errors)
    return redb


def _validate_redb(
    new: Mapping[str, Any], old: Mapping[str, Any] | None, cluster_exists: bool, ports_in_use: Iterable[int]
) -> tuple[RedisEnterpriseDatabase | None, list[FieldError]]:
    errors = _name_errors(plain(new).get("metadata", {}).get("name"), MAX_REDB_NAME_LENGTH, "database")
    errors += _field_review(REDB_KIND, new, old)[0]
    redb, schema_errors = parse_redb(new)
    errors += schema_errors
    if redb is None:
        return None, errors
    spec = redb.spec
    if not cluster_exists:
        errors.append(
            FieldError(
                "spec.redisEnterpriseCluster.name",
                "cluster-exists",
                f"no RedisEnterpriseCluster {redb.cluster_name!r} in namespace {redb.metadata.namespace!r}"
                if redb.cluster_name
                else f"no RedisEnterpriseCluster in namespace {redb.metadata.namespace!r}",
            )
        )
    try:
        if parse_memory_size(spec.memory_size) < parse_memory_size(MIN_MEMORY_SIZE):
            errors.append(
                FieldError(
                    "spec.memorySize", "memory-size", f"{spec.memory_size} is below the minimum of 100MB"
                )
            )
    except QuantityError as error:
        errors.append(FieldError("spec.memorySize", "memory-size", str(error)))
    if spec.shard_count != MAX_SHARD_COUNT:
        errors.append(
            FieldError(
                "spec.shardCount",
                "shard-count",
                f"only 1 shard per database is supported (got {spec.shard_count}); use replication for a "
                "second copy",
            )
        )
    errors += _port_errors(redb, old, set(ports_in_use))
    if spec.database_service_port is not None and not 1 <= spec.database_service_port <= 65535:
        errors.append(
            FieldError("spec.databaseServicePort", "port-range", "must be a TCP port between 1 and 65535")
        )
    secret = spec.database_secret_name
    if secret is not None and (len(secret) > 253 or not _DNS1123_SUBDOMAIN.match(secret)):
        errors.append(FieldError("spec.databaseSecretName", "name", f"{secret!r} is not a valid Secret name"))
    return redb, errors


def _assigned_port(old: Mapping[str, Any] | None) -> int | None:
    """The port the database had: its spec's, else the one the cluster assigned (status)."""
    if old is None:
        return None
    previous, _ = parse_redb(old)
    if previous is None:
        return None
    if previous.spec.database_port is not None:
        return previous.spec.database_port
    for endpoint in (previous.status.internal_endpoints or []) if previous.status else []:
        if endpoint.port is not None:
            return endpoint.port
    return None


def _port_errors(
    redb: RedisEnterpriseDatabase, old: Mapping[str, Any] | None, in_use: set[int]
) -> list[FieldError]:
    port = redb.spec.database_port
    if port is None:
        return []
    errors: list[FieldError] = []
    if port not in DATABASE_PORT_RANGE:
        errors.append(
            FieldError(
                "spec.databasePort",
                "port-range",
                f"{port} is outside the database port range "
                f"{DATABASE_PORT_RANGE.start}-{DATABASE_PORT_RANGE.stop - 1}",
            )
        )
    elif port in in_use:
        errors.append(
            FieldError("spec.databasePort", "port-unique", f"{port} is already used by another database")
        )
    assigned = _assigned_port(old)
    if assigned is not None and port != assigned:
        errors.append(
            FieldError(
                "spec.databasePort",
                "immutable",
                f"cannot change after creation (the database listens on {assigned}): clients and Services "
                "depend on it; create a new database instead",
            )
        )
    return errors
