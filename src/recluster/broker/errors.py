"""OSB error responses: an HTTP status and the spec's body `{"error": <code>, "description": ...}`.

`error` carries only the codes the specification defines (AsyncRequired, ConcurrencyError,
RequiresApp, MaintenanceInfoConflict); other failures say why in `description` alone. Descriptions
name fields and rules, never values (a parameter may be a secret)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

ASYNC_REQUIRED = "AsyncRequired"
CONCURRENCY_ERROR = "ConcurrencyError"
REQUIRES_APP = "RequiresApp"
MAINTENANCE_INFO_CONFLICT = "MaintenanceInfoConflict"


class BrokerError(Exception):
    def __init__(self, status: int, description: str, error: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.error = error
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"description": self.description}
        if self.error:
            body["error"] = self.error
        body.update(self.extra)
        return body


def bad_request(description: str) -> BrokerError:
    return BrokerError(400, description)


def unauthorized() -> BrokerError:
    return BrokerError(401, "authentication required: HTTP Basic with the broker's credentials")


def not_found(description: str) -> BrokerError:
    return BrokerError(404, description)


def conflict(description: str) -> BrokerError:
    return BrokerError(409, description)


def gone(description: str) -> BrokerError:
    return BrokerError(410, description)


def precondition_failed(description: str) -> BrokerError:
    return BrokerError(412, description)


def async_required(what: str = "This Service Plan") -> BrokerError:
    return BrokerError(422, f"{what} requires client support for asynchronous service operations "
                       "(add ?accepts_incomplete=true)", ASYNC_REQUIRED)


def concurrency_error(description: str) -> BrokerError:
    return BrokerError(422, description, CONCURRENCY_ERROR)


def maintenance_info_conflict() -> BrokerError:
    return BrokerError(422, "The maintenance information for the requested Service Plan has changed; "
                       "fetch the catalog again", MAINTENANCE_INFO_CONFLICT)


def unprocessable(description: str) -> BrokerError:
    return BrokerError(422, description)


def from_validation_error(error: ValidationError, what: str = "body") -> BrokerError:
    """A 400 naming the first bad field of a request body (values are never echoed)."""
    problems = error.errors(include_input=False, include_url=False)
    first = problems[0] if problems else {"loc": (), "msg": "invalid", "type": ""}
    field = ".".join(str(p) for p in first.get("loc", ())) or what
    if first.get("type") == "missing":
        text = f"'{field}' is required"
    else:
        text = f"'{field}': {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return bad_request(f"malformed {what}: {text}{more}")
