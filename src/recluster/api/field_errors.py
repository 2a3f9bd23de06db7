"""The shape of a validation answer (FieldError, SpecInvalid, the message) and the steps every
validator shares: a body made plain, its schema errors, its name, its model. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from recluster.api.rec import RedisEnterpriseCluster
from recluster.api.redb import (
    RedisEnterpriseDatabase,
)

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
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


def name_errors(name: str | None, max_length: int, kind: str) -> list[FieldError]:
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


def parse_body(
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

