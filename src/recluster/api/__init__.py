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
from recluster.api.support import REC_FIELDS, REDB_FIELDS, SpecField, Support
from recluster.api.validation import (
    FieldError,
    FieldWarning,
    SpecInvalid,
    check_rec,
    check_redb,
    describe,
    rec_warnings,
    redb_warnings,
    validate_rec,
    validate_redb,
)

__all__ = [
    "GROUP",
    "REC_FIELDS",
    "REDB_FIELDS",
    "ClusterState",
    "Condition",
    "ConditionType",
    "FieldError",
    "FieldWarning",
    "ObjectMeta",
    "QuantityError",
    "RedisEnterpriseCluster",
    "RedisEnterpriseClusterSpec",
    "RedisEnterpriseDatabase",
    "RedisEnterpriseDatabaseSpec",
    "SpecField",
    "SpecInvalid",
    "SpecStatus",
    "Support",
    "check_rec",
    "check_redb",
    "describe",
    "find_condition",
    "format_bytes",
    "format_memory_size",
    "parse_memory_size",
    "parse_quantity",
    "quantity_bytes",
    "rec_warnings",
    "redb_warnings",
    "set_condition",
    "validate_rec",
    "validate_redb",
]
