"""The one thin Kubernetes I/O adapter of the operator and the rigger: server-side apply,
get/list/delete, status merge-patch and events, on plain dicts. JSON over one aiohttp session (kept
connections), with the credentials of kubeconfig.py; no generated models (kubernetes_asyncio's
client is some 60 MiB of them): the builders produce dicts, and what is applied is exactly what they
built."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from recluster.api import rec, redb
from recluster.clients.kubeconfig import KubeConfig

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

# kind -> plural of every kind the operator touches (apiVersion comes with the object).
PLURALS: dict[str, str] = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
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


def secret_value(secret: dict[str, Any] | None, key: str) -> str | None:
    """The decoded value of `key` in a Secret as read from the apiserver (None: no such key)."""
    data = (secret or {}).get("data") or {}
    if key not in data:
        return None
    return base64.b64decode(data[key]).decode()


def resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{PLURALS[kind]}"
    return path + (f"/{name}" if name else "")


REQUEST_TIMEOUT_S = 30.0


class Kube:
    def __init__(self, config: KubeConfig, field_manager: str) -> None:
        self.config = config
        self.field_manager = field_manager
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def connect(cls, field_manager: str, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials in a pod; otherwise the kubeconfig (KUBECONFIG or the given file)."""
        return cls(KubeConfig.load(kubeconfig), field_manager)

    @classmethod
    def for_user(cls, field_manager: str, kubeconfig: str | None = None, context: str | None = None) -> Kube:
        """With the credentials kubectl would use (KubeConfig.for_user): the admin CLI's."""
        return cls(KubeConfig.for_user(kubeconfig, context), field_manager)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context())
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = self._headers("application/json")
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        params = [(key, str(value)) for key, value in query or []]
        url = self.config.server + path
        async with self._http().request(method, url, params=params, data=data, headers=headers) as response:
            text = await response.text()
            if response.status >= 400:
                raise KubeError(response.status, _reason(text, response.reason), f"{method} {path}")
        return json.loads(text) if text else None

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        token = self.config.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def text(self, path: str, query: list[tuple[str, Any]] | None = None) -> str:
        """A GET whose answer is text, not JSON (a container's log)."""
        params = [(key, str(value)) for key, value in query or []]
        url = self.config.server + path
        async with self._http().get(url, params=params, headers=self._headers("*/*")) as response:
            text = await response.text(errors="replace")
            if response.status >= 400:
                raise KubeError(response.status, _reason(text, response.reason), f"GET {path}")
        return text

    async def lines(self, path: str, query: list[tuple[str, Any]] | None = None) -> AsyncIterator[str]:
        """The lines of a streamed GET (a followed log), as they come, for as long as it lasts: no
        overall timeout, only for connecting."""
        params = [(key, str(value)) for key, value in query or []]
        url = self.config.server + path
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT_S)
        async with self._http().get(
            url, params=params, headers=self._headers("*/*"), timeout=timeout
        ) as response:
            if response.status >= 400:
                text = await response.text(errors="replace")
                raise KubeError(response.status, _reason(text, response.reason), f"GET {path}")
            while True:
                line = await response.content.readline()
                if not line:
                    return
                yield line.decode(errors="replace").rstrip("\n")

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


def _reason(body: str, reason: str | None) -> str:
    """The apiserver's Status message (it names the field or the missing permission), short."""
    try:
        status = json.loads(body or "{}")
    except (TypeError, ValueError):
        return str(reason or "")
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or reason or "")[:500]
