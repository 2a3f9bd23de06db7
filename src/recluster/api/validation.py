"""The one validator of REC and REDB specs, used by the reconcile loop and the admission webhook alike.

Every function is pure: it takes the object bodies (as read from the apiserver or an AdmissionReview)
and the facts it needs about the world as arguments, and returns a list of `FieldError`s, empty when
the object is valid. A message names the rule and what to do; it never contains a secret value.

The rules live by kind (rec_validation.py, redb_validation.py) over what they share (field_errors.py:
the answer's shape and the common steps; field_review.py: the contract's fields recluster does not act
on); this module is where callers find them.
"""

from __future__ import annotations

from recluster.api.field_errors import FieldError, FieldWarning, SpecInvalid, describe, plain
from recluster.api.field_review import rec_warnings, redb_warnings
from recluster.api.quorum import majority
from recluster.api.rec_validation import (
    MAX_REC_NAME_LENGTH,
    MIN_NODES,
    RESERVED_LABEL_KEYS,
    RESERVED_LABEL_PREFIX,
    check_rec,
    parse_rec,
    validate_rec,
)
from recluster.api.redb_validation import MAX_REDB_NAME_LENGTH, check_redb, parse_redb, validate_redb

__all__ = [
    "MAX_REC_NAME_LENGTH",
    "MAX_REDB_NAME_LENGTH",
    "MIN_NODES",
    "RESERVED_LABEL_KEYS",
    "RESERVED_LABEL_PREFIX",
    "FieldError",
    "FieldWarning",
    "SpecInvalid",
    "check_rec",
    "check_redb",
    "describe",
    "majority",
    "parse_rec",
    "parse_redb",
    "plain",
    "rec_warnings",
    "redb_warnings",
    "validate_rec",
    "validate_redb",
]
