"""Every built object matches the Kubernetes API types (field names, value types, required fields),
checked against the generated models of the Kubernetes Python client: a misspelt field would be
silently dropped by the apiserver, and this catches it without one."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client import models as k8s_models

from recluster.api import RedisEnterpriseCluster

pytestmark = pytest.mark.unit

BuildAll = Callable[[RedisEnterpriseCluster], list[dict[str, Any]]]
_VALIDATING = Configuration()
_VALIDATING.client_side_validation = True
_SCALARS: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "bool": bool,
    "float": (int, float),
    "datetime": str,
    "date": str,
}


def type_problems(value: Any, type_name: str, path: str) -> Iterator[str]:
    if type_name == "object":  # IntOrString, RawExtension: anything goes
        return
    if type_name in _SCALARS:
        wrong_bool = isinstance(value, bool) and type_name != "bool"
        if not isinstance(value, _SCALARS[type_name]) or wrong_bool:
            yield f"{path}: {value!r} is not {type_name}"
        return
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            yield f"{path}: not a list"
            return
        for index, item in enumerate(value):
            yield from type_problems(item, match[1], f"{path}[{index}]")
        return
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict):
            yield f"{path}: not a map"
            return
        for key, item in value.items():
            yield from type_problems(item, match[1], f"{path}.{key}")
        return
    model = getattr(k8s_models, type_name)
    if not isinstance(value, dict):
        yield f"{path}: not a {type_name} object"
        return
    by_json_key = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json_key:
            yield f"{path}.{key}: no such field in {type_name}"
            continue
        yield from type_problems(item, model.openapi_types[by_json_key[key]], f"{path}.{key}")
    try:  # the model's setters refuse a missing required field
        model(
            **{by_json_key[key]: item for key, item in value.items() if key in by_json_key},
            local_vars_configuration=_VALIDATING,
        )
    except ValueError as error:
        yield f"{path}: {error}"


def test_type_checker_catches_mistakes() -> None:
    bad = {
        "spec": {"replicas": "3", "serviceNam": "rec", "template": {"spec": {"containers": [{"image": "x"}]}}}
    }
    problems = list(type_problems(bad, "V1StatefulSet", "sts"))
    assert any("replicas" in problem for problem in problems)
    assert any("serviceNam" in problem for problem in problems)
    assert any("name" in problem for problem in problems)  # a container needs a name


@pytest.mark.parametrize("which", ["minimal_rec", "full_rec"])
def test_built_objects_match_the_kubernetes_types(
    which: str, build_all: BuildAll, request: pytest.FixtureRequest
) -> None:
    rec = request.getfixturevalue(which)
    for obj in build_all(rec):
        model = f"V1{obj['kind']}"
        assert hasattr(k8s_models, model), model
        assert list(type_problems(obj, model, f"{obj['kind']}/{obj['metadata']['name']}")) == []
