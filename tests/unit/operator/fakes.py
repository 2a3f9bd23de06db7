"""Fakes of the operator's unit tests: a Kubernetes adapter over a dict of objects."""

from __future__ import annotations

import copy
from typing import Any

from recluster.clients.kubernetes import KubeError

Key = tuple[str, str, str, str]


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    """Objects by (apiVersion, kind, namespace, name); merge patches honour a resourceVersion."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.events: list[tuple[str, str]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.gets = 0
        for obj in objects:
            self.put(obj)

    @staticmethod
    def key(obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]

    def put(self, obj: dict[str, Any]) -> None:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("resourceVersion", "1")
        self.objects[self.key(obj)] = obj

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        obj = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def list(self, api_version: str, kind: str, namespace: str, selector: str = "") -> list[Any]:
        return [copy.deepcopy(o) for (a, k, n, _), o in self.objects.items() if (a, k, n) == (
            api_version, kind, namespace)]

    async def merge_patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any],
        subresource: str = "",
    ) -> dict[str, Any]:
        obj = self.objects[(api_version, kind, namespace, name)]
        patch = copy.deepcopy(patch)
        wanted = (patch.get("metadata") or {}).pop("resourceVersion", None)
        if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "PATCH")
        self.patches.append((subresource or kind, patch))
        _merge(obj, patch)
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(obj)

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.put(obj)
        return copy.deepcopy(self.objects[self.key(obj)])

    async def delete(
        self, api_version: str, kind: str, namespace: str, name: str, *_: Any, **__: Any
    ) -> bool:
        return self.objects.pop((api_version, kind, namespace, name), None) is not None

    async def post_event(self, involved: dict[str, Any], *, type_: str, reason: str, message: str,
                         component: str) -> None:
        self.events.append((type_, reason))
