"""The rules of a REC spec, on creation and on change. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recluster.api.common import ResourceRequirements
from recluster.api.field_errors import (
    DNS1123_SUBDOMAIN,
    LABEL_NAME,
    LABEL_VALUE,
    FieldError,
    SpecInvalid,
    name_errors,
    parse_body,
    plain,
)
from recluster.api.field_review import field_review
from recluster.api.naming import APP_LABEL, CLUSTER_LABEL, ROLE_LABEL
from recluster.api.quantity import (
    QuantityError,
    format_bytes,
    parse_quantity,
)
from recluster.api.quorum import majority
from recluster.api.rec import KIND as REC_KIND
from recluster.api.rec import RedisEnterpriseCluster, RedisEnterpriseClusterSpec

# The REC name becomes the name of Services ("<rec>-services-rigger" is the longest, 16 more
# characters) and of the StatefulSet, whose pods' names are host names: a DNS-1035 label of 63
# characters at most for all of them.
MAX_REC_NAME_LENGTH = 63 - len("-services-rigger")
MIN_NODES = 3
# Label keys the operator owns: its selectors depend on them, so extraLabels may not change them.
RESERVED_LABEL_KEYS = (APP_LABEL, CLUSTER_LABEL, ROLE_LABEL)
RESERVED_LABEL_PREFIX = "redis.io/"


# --- REC -------------------------------------------------------------------------------------


def parse_rec(body: Mapping[str, Any]) -> tuple[RedisEnterpriseCluster | None, list[FieldError]]:
    """The REC model of a body, or None and the schema errors."""
    return parse_body(body, RedisEnterpriseCluster, RedisEnterpriseClusterSpec)


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
    errors = name_errors(plain(new).get("metadata", {}).get("name"), MAX_REC_NAME_LENGTH, "cluster")
    errors += field_review(REC_KIND, new, old)[0]
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
            and LABEL_NAME.match(name) is not None
            and (not prefix or (len(prefix) <= 253 and DNS1123_SUBDOMAIN.match(prefix) is not None))
        )
        if not valid_key:
            errors.append(FieldError(f"{path}.{key}", "label-syntax", f"{key!r} is not a valid label key"))
        if len(value) > 63 or not LABEL_VALUE.match(value):
            errors.append(
                FieldError(
                    f"{path}.{key}",
                    "label-syntax",
                    f"{value!r} is not a valid label value (at most 63 letters, digits, '-', '_', '.')",
                )
            )
    return errors

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


