"""`kubectl recluster logs <node-pod | REC>`: every process of a node, as its container's log holds
them (the node daemon forwards each child's output as `[<name>] <line>`: `[ccs]`, `[sentinel]`,
`[sentinel-tls]`, `[shard of bdb <uid>]`; the daemon's own lines have no such prefix), filtered by
process, for one node pod or all of a REC's (then each line starts with its pod), once or followed.
The filters are pure (`parse_process`, `line_process`, `keep`); the reading is the Kubernetes API's
log endpoint through the project's adapter."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recluster.admin.errors import AdminError
from recluster.admin.session import Session
from recluster.api.naming import CLUSTER_LABEL, NODE_CONTAINER, NODE_ROLE, ROLE_LABEL
from recluster.clients.kubernetes import KubeError, resource_path

DAEMON = "daemon"
SHARDS = "shards"
NAMES = (DAEMON, "ccs", "sentinel", "sentinel-tls", SHARDS)
SHARD_PREFIX = "shard of bdb "
PREFIX = re.compile(r"^\[([^\]]{1,80})\] ")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d) ")
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class Process:
    """A process filter: a name of NAMES, or one database's shard (`shard:<uid>`)."""

    name: str
    bdb: int | None = None

    def matches(self, process: str) -> bool:
        if self.bdb is not None:
            return process == f"{SHARD_PREFIX}{self.bdb}"
        if self.name == SHARDS:
            return process.startswith(SHARD_PREFIX)
        return process == self.name


def parse_process(text: str) -> Process:
    """A --process value; ValueError naming the accepted ones."""
    value = text.strip().lower()
    if value in NAMES:
        return Process(value)
    for prefix in ("shard:", "bdb:", "db:"):
        if value.startswith(prefix) and value[len(prefix):].isdigit():
            return Process("shard", int(value[len(prefix):]))
    raise ValueError(f"{text!r} is not a process: use one of {', '.join(NAMES)}, or shard:<database uid>")


def line_process(line: str, timestamps: bool = False) -> str:
    """The process a log line comes from: its `[name] ` prefix, a JSON line's `process`, else the
    daemon."""
    if timestamps:
        line = TIMESTAMP.sub("", line, count=1)
    found = PREFIX.match(line)
    if found:
        return found[1]
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return DAEMON
        if isinstance(record, dict) and isinstance(record.get("process"), str):
            return str(record["process"])
    return DAEMON


def keep(line: str, processes: list[Process], timestamps: bool = False) -> bool:
    if not processes:
        return True
    process = line_process(line, timestamps)
    return any(p.matches(process) for p in processes)


def parse_duration(text: str) -> int:
    """kubectl's --since: `90s`, `5m`, `1h30m` -> seconds; ValueError otherwise."""
    found = DURATION.match(text.strip())
    if not text.strip() or not found or not any(found.groups()):
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 5m, 1h or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in found.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"{text!r} is not a duration longer than zero")
    return total


@dataclass
class LogRequest:
    processes: list[Process]
    follow: bool = False
    since_seconds: int | None = None
    tail: int | None = None
    previous: bool = False
    timestamps: bool = False

    def query(self, container: str | None) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = [("container", container)] if container else []
        if self.follow:
            query.append(("follow", "true"))
        if self.since_seconds is not None:
            query.append(("sinceSeconds", self.since_seconds))
        if self.tail is not None:
            query.append(("tailLines", self.tail))
        if self.previous:
            query.append(("previous", "true"))
        if self.timestamps:
            query.append(("timestamps", "true"))
        return query


def is_node_pod(pod: dict[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return labels.get(ROLE_LABEL) == NODE_ROLE and CLUSTER_LABEL in labels


def node_container(pod: dict[str, Any]) -> str | None:
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    return NODE_CONTAINER if NODE_CONTAINER in names else None


async def target_pods(session: Session, target: str | None) -> list[dict[str, Any]]:
    """The node pod named, or every node pod of the REC named (or of the namespace's only REC)."""
    if target:
        pod = await session.get("v1", "Pod", target)
        if pod is not None:
            if not is_node_pod(pod):
                raise AdminError(f"pod {target} is not a node pod of a REC (use kubectl logs for it)")
            return [pod]
    try:
        rec = await session.rec(target)
    except AdminError as exc:
        raise AdminError(f"{target!r} is neither a node pod nor a REC in namespace {session.namespace}: {exc}"
                         if target else str(exc)) from None
    pods = await session.node_pods(rec)
    if not pods:
        raise AdminError(f"REC {rec['metadata']['name']} has no node pods")
    return pods


async def show(
    session: Session, target: str | None, request: LogRequest, write: Callable[[str], None]
) -> None:
    pods = await target_pods(session, target)
    many = len(pods) > 1

    def emit(pod: str, line: str) -> None:
        if keep(line, request.processes, request.timestamps):
            write(f"[{pod}] {line}" if many else line)

    if not request.follow:
        for pod in pods:
            name = pod["metadata"]["name"]
            path = resource_path("v1", "Pod", session.namespace, name) + "/log"
            try:
                text = await session.kube.text(path, request.query(node_container(pod)))
            except KubeError as exc:
                if not many:
                    raise AdminError(f"log of {name}: {exc}") from None
                print(f"log of {name}: {exc}", file=sys.stderr)
                continue
            for line in text.splitlines():
                emit(name, line)
        return

    async def follow(pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        path = resource_path("v1", "Pod", session.namespace, name) + "/log"
        try:
            async for line in session.kube.lines(path, request.query(node_container(pod))):
                emit(name, line)
        except KubeError as exc:
            print(f"log of {name}: {exc}", file=sys.stderr)

    await asyncio.gather(*(follow(pod) for pod in pods))
