"""A thin async client of the cluster's REST API (the subset an operator, the rigger and the tests
need). Errors raise ClusterApiError carrying the HTTP status and the API's error body."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx


class ClusterApiError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.error_code = str(self.body.get("error_code", ""))
        super().__init__(f"{method} {path}: HTTP {status} {self.error_code}: {self.body.get('message', '')}")


class CredentialFiles(httpx.Auth):
    """Basic auth from the `username` and `password` files of a mounted Secret, read for every
    request: a rotated password (the kubelet replaces the files) is used from the next call on."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        username = (self.directory / "username").read_text().strip("\r\n")
        password = (self.directory / "password").read_text().strip("\r\n")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.headers["Authorization"] = f"Basic {token}"
        yield request


class ClusterApi:
    def __init__(self, base_url: str, username: str | None = None, password: str | None = None,
                 timeout: float = 30.0, verify: bool | str = False,
                 transport: httpx.AsyncBaseTransport | None = None,
                 credentials: httpx.Auth | None = None) -> None:
        """`credentials`: instead of `username` and `password`, e.g. CredentialFiles."""
        auth: httpx.Auth | None = credentials
        if auth is None and username is not None and password is not None:
            auth = httpx.BasicAuth(username, password)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, auth=auth, verify=verify, transport=transport,
                                       timeout=httpx.Timeout(timeout, connect=5.0))

    async def __aenter__(self) -> ClusterApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        response = await self._http.request(method, path, json=json)
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ClusterApiError(response.status_code, body, method, path)
        return body

    # bootstrap
    async def bootstrap_status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/v1/bootstrap")
        return result

    async def create_cluster(self, name: str, username: str, password: str, license: str = "") -> None:
        await self.request("POST", "/v1/bootstrap/create_cluster", {
            "action": "create_cluster", "cluster": {"name": name},
            "credentials": {"username": username, "password": password}, "license": license})

    async def join_cluster(self, nodes: list[str], username: str, password: str) -> None:
        await self.request("POST", "/v1/bootstrap/join_cluster", {
            "action": "join_cluster", "cluster": {"nodes": nodes},
            "credentials": {"username": username, "password": password}})

    async def wait_bootstrap(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Poll GET /v1/bootstrap until completed (returned) or error (raised)."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = (await self.bootstrap_status())["bootstrap_status"]
            except (httpx.HTTPError, ClusterApiError) as exc:
                last = {"state": f"unreadable ({exc})"}
            if last.get("state") == "completed":
                return last
            if last.get("state") == "error":
                raise RuntimeError(f"bootstrap of {self.base_url} failed: {last}")
            await asyncio.sleep(0.3)
        raise TimeoutError(f"bootstrap of {self.base_url} not completed after {timeout_s:.0f}s: {last}")

    # cluster, nodes, actions, license, policy
    async def cluster(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/v1/cluster")
        return result

    async def certificates(self) -> dict[str, Any]:
        """The cluster's public certificates (`proxy_cert`: the CA TLS database clients trust)."""
        return dict(await self.request("GET", "/v1/cluster/certificates"))

    async def update_cert(self, name: str, certificate: str, key: str, ca: str = "") -> dict[str, Any]:
        """PUT /v1/cluster/update_cert: a user's certificate (`proxy`: the databases'); 400 names
        what is wrong with it."""
        body = {"name": name, "certificate": certificate, "key": key} | ({"ca": ca} if ca else {})
        result: dict[str, Any] = await self.request("PUT", "/v1/cluster/update_cert", body)
        return result

    async def delete_cert(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("DELETE", f"/v1/cluster/certificates/{name}")
        return result

    async def nodes(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/v1/nodes")
        return result

    async def node(self, uid: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/v1/nodes/{uid}")
        return result

    async def remove_node(self, uid: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", f"/v1/nodes/{uid}/actions/remove")
        return result

    async def action(self, uid: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/v1/actions/{uid}")
        return result

    async def wait_action(self, uid: str, timeout_s: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = await self.action(uid)
            except (httpx.HTTPError, ClusterApiError) as exc:
                last = {"status": f"unreadable ({exc})"}
            if last.get("status") in ("completed", "failed"):
                return last
            await asyncio.sleep(0.5)
        raise TimeoutError(f"action {uid} not finished after {timeout_s:.0f}s: {last}")

    async def license(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/v1/license")
        return result

    async def put_license(self, text: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", "/v1/license", {"license": text})
        return result

    async def policy(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/v1/cluster/policy")
        return result

    async def put_policy(self, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", "/v1/cluster/policy", changes)
        return result

    # databases and shards
    async def bdbs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/v1/bdbs")
        return result

    async def bdb(self, uid: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/v1/bdbs/{uid}")
        return result

    async def create_bdb(self, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/v1/bdbs", spec)
        return result

    async def update_bdb(self, uid: int, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", f"/v1/bdbs/{uid}", changes)
        return result

    async def delete_bdb(self, uid: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("DELETE", f"/v1/bdbs/{uid}")
        return result

    async def wait_bdb_status(self, uid: int, status: str = "active",
                              timeout_s: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = await self.bdb(uid)
            except ClusterApiError as exc:
                if exc.status == 404 and status == "deleted":
                    return {}
                last = {"status": f"unreadable ({exc.error_code})"}
            except httpx.HTTPError as exc:
                last = {"status": f"unreachable ({type(exc).__name__})"}
            if last.get("status") == status:
                return last
            if last.get("status") == "creation-failed":
                raise RuntimeError(f"database {uid} creation failed")
            await asyncio.sleep(0.3)
        raise TimeoutError(f"database {uid} not '{status}' after {timeout_s:.0f}s: {last.get('status')}")

    async def export_bdb(self, uid: int, location: dict[str, Any]) -> dict[str, Any]:
        """Start an export (a backup now) to `location` (Redis Enterprise's location object)."""
        result: dict[str, Any] = await self.request("POST", f"/v1/bdbs/{uid}/actions/export",
                                                    {"export_location": location})
        return result

    async def import_bdb(self, uid: int, source: dict[str, Any]) -> dict[str, Any]:
        """Start an import from `source` (a location object with `filename`)."""
        result: dict[str, Any] = await self.request("POST", f"/v1/bdbs/{uid}/actions/import",
                                                    {"dataset_import_sources": [source]})
        return result

    async def reset_bdb_status(self, uid: int, kind: str) -> None:
        """export_reset_status or import_reset_status (kind: export, import)."""
        await self.request("PUT", f"/v1/bdbs/{uid}/actions/{kind}_reset_status")

    async def wait_bdb_transfer(self, uid: int, kind: str, timeout_s: float = 300.0) -> dict[str, Any]:
        """The bdb once its export or import (kind) has ended, succeeded or failed."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = await self.bdb(uid)
            if last.get(f"{kind}_status") in ("succeeded", "failed"):
                return last
            await asyncio.sleep(0.3)
        raise TimeoutError(f"the {kind} of database {uid} had not ended after {timeout_s:.0f}s: "
                           f"{last.get(f'{kind}_status')} at {last.get(f'{kind}_progress')}%")

    async def shards(self, bdb_uid: int | None = None) -> list[dict[str, Any]]:
        path = f"/v1/bdbs/{bdb_uid}/shards" if bdb_uid is not None else "/v1/shards"
        result: list[dict[str, Any]] = await self.request("GET", path)
        return result

    async def fail_over_shard(self, shard_uid: int | str) -> dict[str, Any]:
        """A planned failover of a master shard (its database's replica takes over)."""
        result: dict[str, Any] = await self.request("POST", f"/v1/shards/{shard_uid}/actions/failover")
        return result

    async def fail_over_bdb(self, bdb_uid: int) -> dict[str, Any]:
        """A planned failover of the database's master shard."""
        master = next(s for s in await self.shards(bdb_uid) if s.get("role") == "master")
        return await self.fail_over_shard(master["uid"])

    async def bdb_stats(self, uid: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/v1/bdbs/stats/last/{uid}")
        return result

    # users, roles and Redis ACLs: one shape for the three collections
    async def objects(self, kind: str) -> list[dict[str, Any]]:
        """`kind`: users, roles or redis_acls."""
        result: list[dict[str, Any]] = await self.request("GET", f"/v1/{kind}")
        return result

    async def create_object(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", f"/v1/{kind}", body)
        return result

    async def update_object(self, kind: str, uid: int, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", f"/v1/{kind}/{uid}", changes)
        return result

    async def delete_object(self, kind: str, uid: int) -> None:
        await self.request("DELETE", f"/v1/{kind}/{uid}")
