"""CustomResourceDefinitions generated from the models, so the schema and the code never disagree.

pydantic's JSON Schema is turned into a *structural* OpenAPI v3 schema, the form apiextensions/v1
requires: `$ref`s inlined, `X | None` reduced to `X` (an absent field is how a manifest says "unset"),
`title`s dropped, open objects marked `x-kubernetes-preserve-unknown-fields` instead of
`additionalProperties: true`, and quantities kept as int-or-string with the Kubernetes pattern.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from recluster.api import rec, redb
from recluster.api.common import GROUP

Schema = dict[str, Any]

_REC_COLUMNS: list[Schema] = [
    {"name": "Nodes", "type": "integer", "jsonPath": ".spec.nodes"},
    {"name": "Version", "type": "string", "jsonPath": ".status.version"},
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    {"name": "Spec Status", "type": "string", "jsonPath": ".status.specStatus"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
_REDB_COLUMNS: list[Schema] = [
    {"name": "Version", "type": "string", "jsonPath": ".status.version"},
    {"name": "Port", "type": "string", "jsonPath": ".status.internalEndpoints[*].port"},
    {"name": "Cluster", "type": "string", "jsonPath": ".status.redisEnterpriseCluster"},
    {"name": "Shards", "type": "string", "jsonPath": ".status.shardStatuses.active"},
    {"name": "Status", "type": "string", "jsonPath": ".status.status"},
    {"name": "Spec Status", "type": "string", "jsonPath": ".status.specStatus"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

REC_CRD_FILE = f"{GROUP}_{rec.PLURAL}.yaml"
REDB_CRD_FILE = f"{GROUP}_{redb.PLURAL}.yaml"


def openapi_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a model."""
    json_schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = json_schema.pop("$defs", {})
    # Class docstrings speak to developers; the fields' own descriptions are for `kubectl explain`.
    for definition in [json_schema, *definitions.values()]:
        definition.pop("description", None)
    return _ordered(_structural(json_schema, definitions))


_KEY_ORDER = ["type", "description", "default", "enum", "format", "minimum", "maximum", "pattern", "anyOf"]


def _ordered(schema: Schema) -> Schema:
    """Keys in a stable, readable order (type first, nested blocks last), copied so YAML has no aliases."""
    ordered: Schema = {key: copy.deepcopy(schema[key]) for key in _KEY_ORDER if key in schema}
    for key, value in schema.items():
        if key in ordered:
            continue
        if key == "properties":
            ordered[key] = {name: _ordered(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            ordered[key] = _ordered(value)
        else:
            ordered[key] = copy.deepcopy(value)
    return ordered


def _structural(schema: Schema, definitions: dict[str, Schema]) -> Schema:
    schema = dict(schema)
    if "$ref" in schema:
        target = definitions[schema.pop("$ref").rsplit("/", 1)[-1]]
        schema = {**target, **schema}  # the field's own description and default win
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {**_structural(schema.pop("allOf")[0], definitions), **schema}
    if "anyOf" in schema and not schema.get("x-kubernetes-int-or-string"):
        branches = [branch for branch in schema.pop("anyOf") if branch.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"a union is not structural: {branches}")
        schema = {**_structural(branches[0], definitions), **schema}
    schema.pop("title", None)
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "properties" in schema:
        schema["properties"] = {
            name: _structural(value, definitions) for name, value in schema["properties"].items()
        }
        schema.setdefault("type", "object")
    extra = schema.pop("additionalProperties", None)
    if extra is True:
        schema["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):
        schema["additionalProperties"] = _structural(extra, definitions)
    if "items" in schema:
        schema["items"] = _structural(schema["items"], definitions)
    if "required" in schema:
        schema["required"] = sorted(schema["required"])
    if schema.get("type") == "object" and "properties" not in schema and "additionalProperties" not in schema:
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _resource_schema(spec_model: type[BaseModel], status_model: type[BaseModel], description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": openapi_schema(spec_model),
            "status": openapi_schema(status_model),
        },
    }


def _crd(
    *,
    kind: str,
    plural: str,
    singular: str,
    short_name: str,
    versions: list[tuple[str, bool]],
    schema: Schema,
    columns: list[Schema],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app": "redis-enterprise"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": [short_name],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": name,
                    "served": True,
                    "storage": storage,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(columns),
                }
                for name, storage in versions
            ],
        },
    }


def rec_crd() -> dict[str, Any]:
    """REC: v1 is stored; v1alpha1 is served with the same schema (no conversion needed)."""
    return _crd(
        kind=rec.KIND,
        plural=rec.PLURAL,
        singular=rec.SINGULAR,
        short_name=rec.SHORT_NAME,
        versions=[(rec.VERSION, True), ("v1alpha1", False)],
        schema=_resource_schema(
            rec.RedisEnterpriseClusterSpec,
            rec.RedisEnterpriseClusterStatus,
            "A Redis Enterprise-style cluster: a StatefulSet of nodes and the services around it.",
        ),
        columns=_REC_COLUMNS,
    )


def redb_crd() -> dict[str, Any]:
    return _crd(
        kind=redb.KIND,
        plural=redb.PLURAL,
        singular=redb.SINGULAR,
        short_name=redb.SHORT_NAME,
        versions=[(redb.VERSION, True)],
        schema=_resource_schema(
            redb.RedisEnterpriseDatabaseSpec,
            redb.RedisEnterpriseDatabaseStatus,
            "A database in a RedisEnterpriseCluster.",
        ),
        columns=_REDB_COLUMNS,
    )


_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
_FORBIDDEN = ("$ref", "$defs", "definitions", "allOf", "oneOf", "not")


def structural_problems(schema: Schema, path: str = "") -> list[str]:
    """What keeps a schema from being structural, per the apiextensions/v1 rules that matter here:
    every node typed (unless int-or-string or preserve-unknown-fields), no $ref, anyOf only in the
    int-or-string form, properties and additionalProperties never together, arrays with items, and
    defaults that fit their type and enum. Empty when the schema is structural."""
    problems: list[str] = []
    where = path or "<root>"
    for key in _FORBIDDEN:
        if key in schema:
            problems.append(f"{where}: {key} is not allowed")
    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    if "anyOf" in schema and not (int_or_string and schema["anyOf"] == _INT_OR_STRING):
        problems.append(f"{where}: anyOf is only allowed in the int-or-string form")
    kind = schema.get("type")
    if not kind and not int_or_string and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{where}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{where}: properties and additionalProperties together")
    if kind == "array" and "items" not in schema:
        problems.append(f"{where}: array without items")
    if "default" in schema:
        problems += _default_problems(schema, where)
    for name, child in schema.get("properties", {}).items():
        problems += structural_problems(child, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        problems += structural_problems(schema["items"], f"{path}[]")
    return problems


def _default_problems(schema: Schema, where: str) -> list[str]:
    default = schema["default"]
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "boolean": bool,
        "number": (int, float),
        "object": dict,
        "array": list,
    }
    kind = schema.get("type")
    if kind in expected and (
        not isinstance(default, expected[kind]) or (kind == "integer" and isinstance(default, bool))
    ):
        return [f"{where}: default {default!r} is not of type {kind}"]
    if "enum" in schema and default not in schema["enum"]:
        return [f"{where}: default {default!r} is not one of the enum"]
    return []
