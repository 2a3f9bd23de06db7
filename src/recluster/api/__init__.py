"""The REC and REDB API: models, CRD generation and the one validator. Pure: no I/O."""

from recluster.api.common import GROUP, Condition, ObjectMeta, SpecStatus
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
    "format_bytes",
    "format_memory_size",
    "ignored_fields",
    "parse_memory_size",
    "parse_quantity",
    "quantity_bytes",
    "validate_rec",
    "validate_redb",
]
