"""`kubectl recluster report [REC]`: a support bundle, a tar.gz (or a directory) of what a support
engineer asks for first, with no secret in it:

    summary.json         what was collected, when, by which version, and what could not be
    status.txt/.json     `kubectl recluster status` at the time
    kubernetes/          the REC, its REDBs, pods, StatefulSets, Deployments, Services,
                         EndpointSlices, PVCs, PodDisruptionBudgets, the namespace's events (also as
                         events.txt), and the Secrets by name, type and keys only
    logs/<pod>/          every container's log of the REC's pods, and the previous one after a restart
    operator/            the operator's Deployment, pods and logs (namespace --operator-namespace)
    rest/                the REST API's views: cluster, policy, nodes, bdbs, shards

Every file goes through redact.py before it is written: secret fields redacted, and every value of
the namespace's Secrets (read once, first) scrubbed wherever it appears. Environment variables that
come from Secrets stay references (`valueFrom.secretKeyRef`): pod objects never hold their values."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from recluster import __version__
from recluster.admin.errors import AdminError
from recluster.admin.redact import Scrubber, secret_data_values, secret_listing
from recluster.admin.session import Session, rec_model
from recluster.admin.status import Observed, build_status, redb_cluster, render_status
from recluster.api import redb as redb_api
from recluster.api.naming import BDB_UID_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL
from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import KubeError, resource_path

OPERATOR_SELECTOR = "name=redis-enterprise-operator"  # the operator pods' label (deploy/operator.yaml)
OPERATOR_DEPLOYMENT = "redis-enterprise-operator"
LOG_LIMIT_BYTES = 20 * 1024 * 1024  # per container log, the most recent bytes
QUESTIONS = """\
What this bundle answers (docs/troubleshooting.md):
- Is the cluster up, and which nodes are in it?        status.txt, rest/nodes.json, kubernetes/pods.json
- Which database is where, and is every shard in sync?  status.txt, rest/bdbs.json, rest/shards.json
- Where does each database's Service lead?              status.txt (ENDPOINTS), kubernetes/endpointslices.json
- What did the operator do, and what did it refuse?     kubernetes/events.txt, operator/logs/
- Why did a node or a shard restart or fail over?       logs/<pod>/*.log (every process of the node:
                                                        [ccs], [sentinel], [shard of bdb N]), *.previous.log
- Is the spec accepted?                                 kubernetes/rec.json, kubernetes/redbs.json (status)
No secret values: Secrets are listed by name and keys only, passwords in REST views are redacted, and
every value of the namespace's Secrets was scrubbed from every file.
"""


def tidy(obj: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes object without its managedFields (noise for a reader)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def event_lines(events: list[dict[str, Any]]) -> str:
    """The events as lines, oldest first: time, type, reason, object, count, message."""
    def when(event: dict[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")

    lines = []
    for event in sorted(events, key=when):
        involved = event.get("involvedObject") or {}
        lines.append(f"{when(event)}  {event.get('type', '')}  {event.get('reason', '')}  "
                     f"{involved.get('kind', '')}/{involved.get('name', '')}  x{event.get('count') or 1}  "
                     f"{' '.join(str(event.get('message') or '').split())}")
    return "\n".join(lines) + "\n"


def default_path(rec_name: str, now: dt.datetime) -> Path:
    return Path(f"recluster-report-{rec_name}-{now.strftime('%Y%m%dT%H%M%SZ')}.tar.gz")


def is_archive(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


class Bundle:
    """The bundle's directory; every file written through the scrubber."""

    def __init__(self, root: Path, scrubber: Scrubber) -> None:
        self.root, self.scrubber = root, scrubber
        self.files: list[str] = []
        self.errors: list[str] = []

    def text(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(self.scrubber.text(text))
        path.chmod(0o600)
        self.files.append(name)

    def json(self, name: str, value: Any) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(self.scrubber.document(value))
        path.chmod(0o600)
        self.files.append(name)

    def error(self, what: str, exc: BaseException) -> None:
        self.errors.append(self.scrubber.text(f"{what}: {exc or type(exc).__name__}"))


async def report(
    session: Session,
    rec_name: str | None,
    out: Path | None,
    operator_namespace: str | None,
    log_limit_bytes: int,
    progress: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    rec = await session.rec(rec_name)
    name, ns = rec["metadata"]["name"], session.namespace
    target = out or default_path(name, now)
    if target.exists() and (is_archive(target) or any(target.iterdir())):
        raise AdminError(f"--out {target}: it exists{'' if is_archive(target) else ' and is not empty'}; "
                         "name a new file (.tar.gz) or an empty directory")
    op_ns = operator_namespace or ns

    progress("reading the Secrets (only to scrub their values from the bundle)")
    secrets, listing_error = await _secrets(session, rec, [ns] if op_ns == ns else [ns, op_ns])
    scrubber = Scrubber(secret_data_values(secrets))
    work = Path(tempfile.mkdtemp(prefix="recluster-report-"))
    os.chmod(work, 0o700)
    bundle = Bundle(work / target.name.removesuffix(".tar.gz").removesuffix(".tgz"), scrubber)
    bundle.root.mkdir(mode=0o700)
    if listing_error:
        bundle.errors.append(listing_error)
    try:
        observed, other_pods = await _kubernetes(session, bundle, rec, secrets, progress)
        await _operator(session, bundle, op_ns, log_limit_bytes, progress)
        await _pod_logs(session, bundle, "logs", ns, observed.pods + other_pods, log_limit_bytes, progress)
        await _rest(session, bundle, rec, observed, progress)
        document = build_status(observed)
        bundle.json("status.json", document)
        console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
        console.print(render_status(document))
        bundle.text("status.txt", console.file.getvalue())  # type: ignore[attr-defined]
        bundle.text("README.txt", QUESTIONS)
        summary = {
            "tool": f"kubectl-recluster {__version__}",
            "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "apiserver": session.kube.config.server,
            "namespace": ns,
            "rec": name,
            "operatorNamespace": op_ns,
            "secretsScrubbed": len(scrubber.forms),
            "files": [*sorted(bundle.files), "summary.json"],
            "errors": bundle.errors,
            "health": document["health"],
        }
        bundle.json("summary.json", summary)
        _write_out(bundle.root, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, summary


async def _secrets(
    session: Session, rec: dict[str, Any], namespaces: list[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """Every Secret of the namespaces; if listing is refused, those the REC and its REDBs name."""
    found: list[dict[str, Any]] = []
    refused = []
    for namespace in namespaces:
        try:
            found += await session.kube.list("v1", "Secret", namespace)
        except KubeError as exc:
            refused.append(f"{namespace}: {exc}")
    if not refused:
        return found, None
    model = rec_model(rec)
    names = {model.credentials_secret_name, model.tls_secret_name}
    for redb in await session.redbs():
        try:
            names.add(redb_api.RedisEnterpriseDatabase.model_validate(redb).secret_name)
        except ValueError:
            continue
    for secret_name in sorted(names):
        try:
            secret = await session.kube.get("v1", "Secret", session.namespace, secret_name)
        except KubeError:
            continue
        if secret is not None:
            found.append(secret)
    return found, ("listing Secrets was refused (" + "; ".join(refused) + "): only the values of the REC's "
                   "and its databases' Secrets were scrubbed")


async def _kubernetes(
    session: Session, bundle: Bundle, rec: dict[str, Any], secrets: list[dict[str, Any]],
    progress: Callable[[str], None],
) -> tuple[Observed, list[dict[str, Any]]]:
    """What status reads of Kubernetes, and the REC's other pods (rigger, broker)."""
    name, ns = rec["metadata"]["name"], session.namespace
    progress(f"reading the Kubernetes objects of REC {name} in namespace {ns}")
    observed = Observed(tidy(rec))
    bundle.json("kubernetes/rec.json", tidy(rec))
    selector = f"{CLUSTER_LABEL}={name}"
    kinds = [("pods", "v1", "Pod"), ("statefulsets", "apps/v1", "StatefulSet"),
             ("deployments", "apps/v1", "Deployment"), ("services", "v1", "Service"),
             ("endpointslices", "discovery.k8s.io/v1", "EndpointSlice"),
             ("persistentvolumeclaims", "v1", "PersistentVolumeClaim"),
             ("poddisruptionbudgets", "policy/v1", "PodDisruptionBudget")]
    listed: dict[str, list[dict[str, Any]]] = {}
    for file, api_version, kind in kinds:
        try:
            listed[file] = [tidy(o) for o in await session.kube.list(api_version, kind, ns, selector)]
            bundle.json(f"kubernetes/{file}.json", listed[file])
        except (KubeError, OSError) as exc:
            listed[file] = []
            bundle.error(f"list {kind}", exc)
    try:
        redbs = [tidy(r) for r in await session.redbs() if redb_cluster(r, name)]
        bundle.json("kubernetes/redbs.json", redbs)
    except AdminError as exc:
        redbs = []
        bundle.error("list REDB", exc)
    try:
        events = await session.kube.list("v1", "Event", ns)
        bundle.json("kubernetes/events.json", [tidy(e) for e in events])
        bundle.text("kubernetes/events.txt", event_lines(events))
    except (KubeError, OSError) as exc:
        bundle.error("list Event", exc)
    bundle.json("kubernetes/secrets.json", [secret_listing(s) for s in secrets])
    def labelled(obj: dict[str, Any], key: str) -> str | None:
        return (obj["metadata"].get("labels") or {}).get(key)

    node_pods = [p for p in listed["pods"] if labelled(p, ROLE_LABEL) == NODE_ROLE]
    observed.pods = node_pods
    observed.redbs = redbs
    observed.services = [s for s in listed["services"] if labelled(s, BDB_UID_LABEL) is not None]
    observed.slices = [s for s in listed["endpointslices"] if labelled(s, BDB_UID_LABEL) is not None]
    return observed, [p for p in listed["pods"] if p not in node_pods]


async def _operator(
    session: Session, bundle: Bundle, namespace: str, limit: int, progress: Callable[[str], None]
) -> None:
    progress(f"reading the operator in namespace {namespace}")
    try:
        deployment = await session.kube.get("apps/v1", "Deployment", namespace, OPERATOR_DEPLOYMENT)
        pods = await session.kube.list("v1", "Pod", namespace, OPERATOR_SELECTOR)
    except (KubeError, OSError) as exc:
        bundle.error(f"the operator in namespace {namespace}", exc)
        return
    if deployment is not None:
        bundle.json("operator/deployment.json", tidy(deployment))
    bundle.json("operator/pods.json", [tidy(p) for p in pods])
    if not pods:
        bundle.errors.append(f"no operator pod ({OPERATOR_SELECTOR}) in namespace {namespace}: it runs "
                             "elsewhere (give --operator-namespace) or outside the cluster")
    await _pod_logs(session, bundle, "operator/logs", namespace, pods, limit, progress)


async def _pod_logs(
    session: Session, bundle: Bundle, directory: str, namespace: str, pods: list[dict[str, Any]], limit: int,
    progress: Callable[[str], None],
) -> None:
    for pod in pods:
        name = pod["metadata"]["name"]
        progress(f"reading the logs of pod {name}")
        statuses = {s["name"]: s for s in ((pod.get("status") or {}).get("containerStatuses") or [])
                    + ((pod.get("status") or {}).get("initContainerStatuses") or [])}
        spec = pod.get("spec") or {}
        containers = [c["name"] for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
        path = resource_path("v1", "Pod", namespace, name) + "/log"
        for container in containers:
            runs = [False] + ([True] if (statuses.get(container) or {}).get("restartCount") else [])
            for previous in runs:
                query: list[tuple[str, Any]] = [("container", container), ("limitBytes", limit)]
                if previous:
                    query.append(("previous", "true"))
                suffix = ".previous.log" if previous else ".log"
                try:
                    text = await session.kube.text(path, query)
                except (KubeError, OSError) as exc:
                    bundle.error(f"log of {name}/{container}{' (previous)' if previous else ''}", exc)
                    continue
                bundle.text(f"{directory}/{name}/{container}{suffix}", text)


async def _rest(
    session: Session, bundle: Bundle, rec: dict[str, Any], observed: Observed, progress: Callable[[str], None]
) -> None:
    progress("reading the cluster's REST API (cluster, policy, nodes, bdbs, shards)")
    try:
        async with session.rest(rec) as (api, access):
            observed.rest_pod, observed.rest_via = access.pod, access.via
            views: dict[str, Callable[[], Awaitable[Any]]] = {
                "cluster": api.cluster, "policy": api.policy, "nodes": api.nodes, "bdbs": api.bdbs,
                "shards": api.shards}
            for view, call in views.items():
                try:
                    value = await call()
                except (ClusterApiError, httpx.HTTPError, OSError) as exc:
                    bundle.error(f"REST {view}", exc)
                    continue
                bundle.json(f"rest/{view}.json", value)
                if view == "cluster":
                    observed.cluster = value
                elif view in ("nodes", "bdbs", "shards"):
                    setattr(observed, view, value)
    except AdminError as exc:
        observed.rest_error = str(exc)
        bundle.error("the REST API", exc)


def _write_out(root: Path, target: Path) -> None:
    if is_archive(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(root, arcname=root.name)
        return
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for item in root.iterdir():
        shutil.move(str(item), target / item.name)
