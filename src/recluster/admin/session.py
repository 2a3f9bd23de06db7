"""Where the admin CLI works: the user's kubeconfig (as kubectl reads it), the namespace, the REC it
names (or the only one there), the REC's credentials and CA from its Secrets, and the cluster's REST
API on a node pod: at the pod's address when this machine reaches it, else through a tunnel made of
`kubectl exec` (tunnel.py says why not `kubectl port-forward`). The REST client is the operator's
own (clients/node_api.py): the node's certificate is checked against the REC's CA for the name
`<rec>.<namespace>.svc`, which every node's certificate carries (no cluster domain needed)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from recluster.admin.errors import AdminError
from recluster.admin.tunnel import Tunnel
from recluster.api import rec as rec_api
from recluster.api import redb as redb_api
from recluster.api.common import ObjectMeta
from recluster.api.naming import APP, APP_LABEL, CLUSTER_LABEL, NODE_CONTAINER, NODE_ROLE, ROLE_LABEL
from recluster.api.ports import API_PORT
from recluster.api.rec import RedisEnterpriseCluster, RedisEnterpriseClusterSpec
from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.clients.kubeconfig import KubeConfigError
from recluster.clients.kubernetes import Kube, KubeError
from recluster.clients.node_api import node_api

T = TypeVar("T")
FIELD_MANAGER = "kubectl-recluster"
REACH_TIMEOUT_S = 1.5  # a TCP connect that takes longer: the address is not reachable from here
# how to reach pods and Services: try the address, else a tunnel; or only one of the two
AUTO, DIRECT, TUNNEL = "auto", "direct", "tunnel"


@dataclass
class Options:
    """The options every command takes (kubectl's, and how to reach the cluster)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    via: str = AUTO
    request_timeout: float = 30.0


@dataclass
class RestAccess:
    """How the REST API was reached: the node pod and `direct` or `tunnel`."""

    pod: str
    via: str


@dataclass
class Session:
    options: Options
    kube: Kube
    namespace: str
    _tunnels: list[Tunnel] = field(default_factory=list)

    @classmethod
    def open(cls, options: Options) -> Session:
        try:
            kube = Kube.for_user(FIELD_MANAGER, options.kubeconfig, options.context)
        except KubeConfigError as exc:
            raise AdminError(f"kubeconfig: {exc}") from None
        namespace = options.namespace or kube.config.namespace or "default"
        return cls(options, kube, namespace)

    async def close(self) -> None:
        for tunnel in self._tunnels:
            await tunnel.stop()
        self._tunnels.clear()
        await self.kube.close()

    # --- Kubernetes reads, with errors that say what was refused ---------------------------------

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        try:
            return await self.kube.get(api_version, kind, namespace or self.namespace, name)
        except KubeError as exc:
            raise AdminError(f"cannot read {kind} {name} in namespace {namespace or self.namespace}: "
                             f"{exc}") from None
        except OSError as exc:
            raise AdminError(f"cannot reach the apiserver {self.kube.config.server}: {exc}") from None

    async def list_objects(
        self, api_version: str, kind: str, selector: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            return await self.kube.list(api_version, kind, namespace or self.namespace, selector)
        except KubeError as exc:
            where = namespace or self.namespace
            raise AdminError(f"cannot list {kind} in namespace {where}: {exc}") from None
        except OSError as exc:
            raise AdminError(f"cannot reach the apiserver {self.kube.config.server}: {exc}") from None

    async def rec(self, name: str | None) -> dict[str, Any]:
        """The REC named, or the only one of the namespace."""
        if name:
            found = await self.get(rec_api.API_VERSION, rec_api.KIND, name)
            if found is None:
                listed = await self.list_objects(rec_api.API_VERSION, rec_api.KIND)
                names = [r["metadata"]["name"] for r in listed]
                raise AdminError(f"no REC {name!r} in namespace {self.namespace} "
                                 f"(there: {', '.join(names) or 'none'})")
            return dict(found)
        recs = await self.list_objects(rec_api.API_VERSION, rec_api.KIND)
        if len(recs) == 1:
            return recs[0]
        if not recs:
            raise AdminError(f"no REC in namespace {self.namespace} (choose another with -n NAMESPACE)")
        listing = ", ".join(r["metadata"]["name"] for r in recs)
        raise AdminError(f"{len(recs)} RECs in namespace {self.namespace} ({listing}): name one")

    async def redbs(self) -> list[dict[str, Any]]:
        return await self.list_objects(redb_api.API_VERSION, redb_api.KIND)

    async def node_pods(self, rec: dict[str, Any]) -> list[dict[str, Any]]:
        """The REC's node pods, by ordinal."""
        pods = await self.list_objects("v1", "Pod", node_selector(rec["metadata"]["name"]))
        return sorted(pods, key=lambda p: pod_ordinal(p["metadata"]["name"]))

    async def secret_data(self, name: str) -> dict[str, str]:
        secret = await self.get("v1", "Secret", name)
        if secret is None:
            raise AdminError(f"no Secret {name} in namespace {self.namespace}")
        return decoded(secret)

    async def rec_access(self, rec: dict[str, Any]) -> tuple[str, str, str]:
        """(CA PEM, username, password) of the REC, from its Secrets."""
        model = rec_model(rec)
        creds = await self.secret_data(model.credentials_secret_name)
        tls = await self.secret_data(model.tls_secret_name)
        if not tls.get("ca.crt"):
            raise AdminError(f"Secret {model.tls_secret_name} has no ca.crt (the cluster's CA)")
        username = creds.get("username") or model.spec.username or rec_api.DEFAULT_USERNAME
        if not creds.get("password"):
            raise AdminError(f"Secret {model.credentials_secret_name} has no password")
        return tls["ca.crt"], username, creds["password"]

    # --- reaching pods: directly or through a tunnel ---------------------------------------------

    async def reach(self, pod: dict[str, Any], port: int) -> tuple[str, int, Tunnel | None]:
        """(host, port, tunnel) at which this machine reaches `port` of the pod: its address, or the
        local end of a tunnel (None: direct; a tunnel lasts until the session closes)."""
        name, address = pod["metadata"]["name"], (pod.get("status") or {}).get("podIP")
        if not address:
            raise AdminError(f"pod {name} has no address (phase {(pod.get('status') or {}).get('phase')})")
        if self.options.via != TUNNEL and await reachable(address, port):
            return address, port, None
        if self.options.via == DIRECT:
            raise AdminError(f"pod {name} ({address}:{port}) is not reachable from here "
                             "(--direct given; without it: a tunnel through kubectl exec)")
        tunnel = await self.tunnel(pod, port)
        return "127.0.0.1", tunnel.local or 0, tunnel

    async def tunnel(self, pod: dict[str, Any], port: int) -> Tunnel:
        """A tunnel to `port` of the pod's address, from inside the pod (tunnel.py)."""
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = NODE_CONTAINER if NODE_CONTAINER in containers else None
        tunnel = Tunnel(self.kubectl_argv(), pod["metadata"]["name"], container,
                        pod["status"]["podIP"], port)
        await tunnel.start()
        self._tunnels.append(tunnel)
        return tunnel

    def kubectl_argv(self) -> list[str]:
        """kubectl with this session's kubeconfig, context and namespace."""
        kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
        if not kubectl:
            raise AdminError("kubectl not found on PATH (needed to tunnel through kubectl exec; "
                             "set KUBECTL to its path, or use --direct)")
        argv = [kubectl]
        if self.options.kubeconfig:
            argv += ["--kubeconfig", self.options.kubeconfig]
        if self.options.context:
            argv += ["--context", self.options.context]
        return [*argv, "-n", self.namespace]

    @contextlib.asynccontextmanager
    async def rest(self, rec: dict[str, Any]) -> AsyncIterator[tuple[ClusterApi, RestAccess]]:
        """The cluster's REST API on the first node pod that answers as a member (ready pods first)."""
        ca, username, password = await self.rec_access(rec)
        server_name = api_server_name(rec)
        pods = await self.node_pods(rec)
        pods.sort(key=lambda p: (not pod_ready(p), pod_ordinal(p["metadata"]["name"])))
        problems: list[str] = []
        for pod in pods:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp"):
                continue
            try:
                host, port, tunnel = await self.reach(pod, API_PORT)
            except AdminError as exc:
                problems.append(f"{name}: {exc}")
                continue
            how = DIRECT if tunnel is None else TUNNEL
            api = node_api(host, server_name, ca, username, password,
                           timeout=self.options.request_timeout, port=port)
            try:
                await api.cluster()
            except (httpx.HTTPError, ClusterApiError, OSError) as exc:
                await api.aclose()
                said = f" ({tunnel.last_error})" if tunnel is not None and tunnel.last_error else ""
                problems.append(f"{name} ({how}): {str(exc) or type(exc).__name__}{said}")
                continue
            try:
                yield api, RestAccess(name, how)
            finally:
                await api.aclose()
            return
        detail = "; ".join(problems) or "no node pod has an address"
        raise AdminError(f"no node pod of REC {rec['metadata']['name']} answers its REST API ({detail})")


# --- pure helpers ---------------------------------------------------------------------------------


def rec_model(rec: dict[str, Any]) -> RedisEnterpriseCluster:
    """The REC as the operator reads it; one the model refuses still gives its names."""
    try:
        return RedisEnterpriseCluster.model_validate(rec)
    except ValidationError:
        meta = rec.get("metadata") or {}
        spec = rec.get("spec") or {}
        secret = spec.get("clusterCredentialSecretName")
        return RedisEnterpriseCluster(
            metadata=ObjectMeta(name=meta.get("name", ""), namespace=meta.get("namespace", "default")),
            spec=RedisEnterpriseClusterSpec.model_validate(
                {"clusterCredentialSecretName": secret} if isinstance(secret, str) else {}),
        )


def node_selector(rec_name: str) -> str:
    return f"{APP_LABEL}={APP},{CLUSTER_LABEL}={rec_name},{ROLE_LABEL}={NODE_ROLE}"


def api_server_name(rec: dict[str, Any]) -> str:
    """The name the nodes' certificate carries for the REST API, without the cluster domain."""
    return f"{rec['metadata']['name']}.{rec['metadata']['namespace']}.svc"


def pod_ordinal(name: str) -> int:
    suffix = name.rpartition("-")[2]
    return int(suffix) if suffix.isdigit() else 1 << 30


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {
        key: base64.b64decode(value).decode(errors="replace")
        for key, value in (secret.get("data") or {}).items()
    }


async def reachable(host: str, port: int, within: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection to host:port opens within `within` s."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_until(
    what: str, check: Callable[[], Awaitable[T | None]], wait_s: float, progress: Callable[[str], None],
    interval: float = 0.5,
) -> T:
    """Call the async `check` until it returns something truthy; AdminError after `wait_s` s.
    `progress(text)` is told every 5 s how long it has waited."""
    started = time.monotonic()
    told = started
    while True:
        result = await check()
        if result:
            return result
        now = time.monotonic()
        if now - started > wait_s:
            raise AdminError(f"timed out after {wait_s:.0f} s waiting for {what}")
        if now - told >= 5:
            progress(f"still waiting for {what} ({now - started:.0f} s of {wait_s:.0f} s)")
            told = now
        await asyncio.sleep(interval)
