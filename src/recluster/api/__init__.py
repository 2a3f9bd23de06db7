"""The REC and REDB API: models, CRD generation and the one validator. Pure: no I/O."""

from recluster.api.common import GROUP, Condition, ObjectMeta, SpecStatus
from recluster.api.conditions import ConditionType, find_condition, set_condition
from recluster.api.quantity import (
    QuantityError,
    format_bytes,
    format_memory_size,
    parse_memory_size,
    parse_quantity,
    quantity_bytes,
)
from recluster.api.rec import ClusterState, RedisEnterpriseCluster, RedisEnterpriseClusterSpec
from recluster.api.redb import RedisEnterpriseDatabase, RedisEnterpriseDatabaseSpec
from recluster.api.validation import (
    FieldError,
    SpecInvalid,
    check_rec,
    check_redb,
    ignored_fields,
    validate_rec,
    validate_redb,
)

__all__ = [
    "GROUP",
    "ClusterState",
    "Condition",
    "ConditionType",
    "FieldError",
    "ObjectMeta",
    "QuantityError",
    "RedisEnterpriseCluster",
    "RedisEnterpriseClusterSpec",
    "RedisEnterpriseDatabase",
    "RedisEnterpriseDatabaseSpec",
    "SpecInvalid",
    "SpecStatus",
    "check_rec",
    "check_redb",
    "find_condition",
    "format_bytes",
    "format_memory_size",
    "ignored_fields",
    "parse_memory_size",
    "parse_quantity",
    "quantity_bytes",
    "set_condition",
    "validate_rec",
    "validate_redb",
]
