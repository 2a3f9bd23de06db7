"""The API's error: an HTTP status, a public `error_code` and a message naming the field and the rule.

Messages never carry secrets (passwords are never echoed back, even when they are the bad input).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

# fields whose value must never appear in an error message
SECRET_FIELDS = frozenset({"password", "authentication_redis_pass", "internal_password", "credentials",
                           "old_password", "new_password"})

# missing required field -> the public API's specific error code
MISSING_CODES = {"name": "missing_db_name", "memory_size": "missing_memory_size"}
FIELD_CODES = {
    "eviction_policy": "eviction_policy_violation",
    "data_persistence": "invalid_data_persistence",
    "aof_policy": "invalid_data_persistence",
    "snapshot_policy": "invalid_data_persistence",
    "port": "port_unavailable",
    "shards_count": "invalid_sharding",
    "replication": "invalid_replication",
}


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": self.error_code, "message": self.message,
                                "description": self.message}
        if self.field:
            body["field"] = self.field
        return body


def from_validation_error(error: ValidationError) -> ApiError:
    return from_problems([dict(p) for p in error.errors(include_input=False, include_url=False)])


def from_problems(problems: list[dict[str, Any]]) -> ApiError:
    """The first problem of a pydantic error list, as a 400 that names the field and the rule."""
    first = problems[0] if problems else {"loc": (), "msg": "invalid body", "type": "value_error"}
    loc = [str(p) for p in first.get("loc", ())]
    field = ".".join(loc) if loc else "body"
    top = loc[0] if loc else ""
    kind = first.get("type", "")
    msg = str(first.get("msg", "invalid"))
    if kind == "missing":
        code = MISSING_CODES.get(field, "missing_field")
        text = f"'{field}' is required"
    elif kind == "extra_forbidden":
        code = "unknown_field"
        text = f"'{field}' is not a known field of this object"
    else:
        code = FIELD_CODES.get(top, "invalid_parameter")
        msg = msg.removeprefix("Value error, ")
        text = f"'{field}': {msg}"
    if top in SECRET_FIELDS:
        text = text.split(":")[0] + ": invalid value (not shown)"
    extra = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return ApiError(400, code, text + extra, field)
