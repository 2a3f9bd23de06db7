"""The contract's fields a spec sets that recluster does not act on (the tables of support.py): refused
values, ignored and unknown fields. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from recluster.api.field_errors import FieldError, FieldWarning, plain
from recluster.api.rec import KIND as REC_KIND
from recluster.api.redb import KIND as REDB_KIND
from recluster.api.support import TABLES, SpecField, Support, parents


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


def field_review(
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
    return field_review(REC_KIND, new, old)[1]


def redb_warnings(new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[FieldWarning]:
    """The same for a REDB."""
    return field_review(REDB_KIND, new, old)[1]


