"""The one thin Kubernetes I/O adapter of the operator: server-side apply, get/list/delete, status
merge-patch and events, on plain dicts. Built on kubernetes_asyncio's ApiClient (auth, TLS, retries
of the connection) but not on its generated models: the builders produce dicts, and what is applied
is exactly what they built."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from recluster.api import rec, redb

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

# kind -> plural of every kind the operator touches (apiVersion comes with the object).
PLURALS: dict[str, str] = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Secret": "secrets",
    "Service": "services",
    "Endpoints": "endpoints",
    "EndpointSlice": "endpointslices",
    "StatefulSet": "statefulsets",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Pod": "pods",
    "Event": "events",
    "Lease": "leases",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    rec.KIND: rec.PLURAL,
    redb.KIND: redb.PLURAL,
}


class KubeError(Exception):
    """An apiserver refusal: status code and the apiserver's reason, never the request body."""

    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {reason}")
        self.status = status
        self.reason = reason


def resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{PLURALS[kind]}"
    return path + (f"/{name}" if name else "")


class Kube:
    def __init__(self, api: k8s.ApiClient, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    @classmethod
    async def connect(cls, field_manager: str, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials in a pod; otherwise the kubeconfig (KUBECONFIG or the given file)."""
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        return cls(k8s.ApiClient(configuration), field_manager)

    async def close(self) -> None:
        await self.api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        try:
            return await self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=30,
            )
        except ApiException as exc:
            raise KubeError(exc.status or 0, _reason(exc), f"{method} {path}") from None

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with our field manager, forcing conflicts: the operator owns the fields
        it sets, so an edit by hand is reverted (drift repair) and fields it does not set are kept."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = [("fieldManager", self.field_manager), ("force", "true")]
        result: dict[str, Any] = await self.request("PATCH", path, query=query, body=obj, content_type=APPLY)
        return result

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request(
                "GET", resource_path(api_version, kind, namespace, name)
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        result = await self.request("GET", resource_path(api_version, kind, namespace), query=query)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> bool:
        """False when it was already gone."""
        body: dict[str, Any] | None = None
        if propagation or grace_period_seconds is not None:
            body = {"propagationPolicy": propagation} if propagation else {}
            if grace_period_seconds is not None:
                body["gracePeriodSeconds"] = grace_period_seconds
        try:
            await self.request("DELETE", resource_path(api_version, kind, namespace, name), body=body)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str = "",
    ) -> dict[str, Any]:
        path = resource_path(api_version, kind, namespace, name) + (f"/{subresource}" if subresource else "")
        result: dict[str, Any] = await self.request("PATCH", path, body=patch, content_type=MERGE)
        return result

    async def post_event(
        self, involved: dict[str, Any], *, type_: str, reason: str, message: str, component: str
    ) -> None:
        """A core/v1 Event about `involved` (an object body). Best effort: a lost event is no failure."""
        meta = involved["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.request("POST", resource_path("v1", "Event", meta["namespace"]), body=event)


def _reason(exc: ApiException) -> str:
    """The apiserver's Status message (it names the field or the missing permission), short."""
    import json

    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason or "")
    return str(status.get("message") or exc.reason or "")[:500]
