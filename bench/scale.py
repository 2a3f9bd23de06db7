"""One cluster holding many databases (issue 11, scale): a 3-node REC with --databases replicated
REDBs (default 100, 100MB each), the operator running as a pod installed the way `recluster local
up` installs it (deploy/bundle.yaml and the admission webhook), and these figures:

- REST API latency (p50, p99, mean, count) of `GET /v1/bdbs` and `GET /v1/bdbs/<uid>` on the
  cluster leader's and on a follower's REST API, over HTTPS with the cluster's credentials (Secret
  `rec`) and CA (`rec-tls`), sequential on one keep-alive connection; measured with one database
  first and with all of them in the same run, and the ratio;
- memory and CPU of the operator (and of the rigger, the node pods and CoreDNS) from the kubelet's
  `/stats/summary` through the apiserver's node proxy: at rest with one database, while the REDBs
  converge, and at rest with all of them; the operator's RSS is cross-checked with the VmRSS of its
  process, found through the container id of the pod's status and the cgroup of that container; the
  node pods' CPU split by process kind, the operator's reconciles (its /metrics), Sentinel PINGs;
- time from a `memorySize` patch of one REDB to the cluster's bdb having the new `memory_size`
  (REST API) and to the REDB being `active` with `observedGeneration` current;
- rigger: a planned failover of one database's master (`POST /v1/shards/<uid>/actions/failover`, which
  the leader asks of Sentinel): the time until Sentinel names the new master, until the `<db>`
  Service's endpoints are the new master's pod IP, and until a client writing through the Service
  address (a fresh connection every 50 ms) gets a write taken by the new master;
- then the harsher fault: deletion of a node pod holding about a third of the masters; the time
  until every one of those databases' Services points at its new master, and the time until the
  cluster is whole again (pods ready, REC Running, every REDB and shard active); a marker written to
  each of those databases before (confirmed with WAIT 1) must still be there.

    .venv/bin/python bench/scale.py [--databases 100] [--state-dir DIR] [--logs DIR]

Without --state-dir a new local cluster `scale` is made in a temporary directory and removed at
the end (also on Ctrl-C); --state-dir uses a running local cluster (the REDBs of the namespace
`scale` are deleted first and at the end, unless --keep). Progress goes to stderr, the report to
stdout. bench/README.md has the figures and how to read them.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import itertools
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
import redis
from rich.console import Console

from recluster.api import format_memory_size, parse_memory_size
from recluster.api.naming import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL
from recluster.api.ports import API_PORT, SENTINEL_PORT
from recluster.api.rec import API_VERSION as REC_API_VERSION
from recluster.api.rec import KIND as REC_KIND
from recluster.api.rec import PLURAL as REC_PLURAL
from recluster.api.redb import API_VERSION as REDB_API_VERSION
from recluster.api.redb import KIND as REDB_KIND
from recluster.api.redb import PLURAL as REDB_PLURAL
from recluster.clients.write_probe import Server, server_on, write_on
from recluster.local.cluster import LocalCluster
from recluster.local.sample import Sample

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "scale"
REC = "rec"
NODE_LABELS = {APP_LABEL: APP, CLUSTER_LABEL: REC, ROLE_LABEL: NODE_ROLE}
NODE_SELECTOR = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
RIGGER_SELECTOR = NODE_SELECTOR.replace("redis.io/role=node", "redis.io/role=services-rigger")
OPERATOR_SELECTOR = "name=redis-enterprise-operator"
REDB_PATH = f"/apis/{REDB_API_VERSION}/namespaces/{NAMESPACE}/{REDB_PLURAL}"
REC_PATH = f"/apis/{REC_API_VERSION}/namespaces/{NAMESPACE}/{REC_PLURAL}/{REC}"
SUITE_OR_BENCH = re.compile(r"(^|[\s/])(pytest|bench/\w+\.py|bin/test|\.ci/run)(\s|$)")
FAILED = ("creation-failed",)  # the bdb's terminal states
MEMORY_SIZE = "100MB"  # the validator's minimum
T = TypeVar("T")


def rec_manifest(node_memory: str) -> dict[str, Any]:
    return {
        "apiVersion": REC_API_VERSION,
        "kind": REC_KIND,
        "metadata": {"name": REC},
        "spec": {
            "nodes": 3,
            # requests small, so three nodes schedule on a 2-core machine; the memory limit leaves
            # room for the shards of many small databases (maxmemory is a limit, not a reservation)
            "redisEnterpriseNodeResources": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"cpu": "1", "memory": node_memory},
            },
            "redisEnterpriseServicesRiggerResources": {
                "requests": {"cpu": "20m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi"},
            },
        },
    }


def redb_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": REDB_API_VERSION,
        "kind": REDB_KIND,
        "metadata": {"name": name},
        "spec": {"redisEnterpriseCluster": {"name": REC}, "memorySize": MEMORY_SIZE, "replication": True},
    }


def db_name(i: int) -> str:
    return f"db-{i:03d}"


# --- small helpers ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def secs(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def mib(value: float) -> str:
    return f"{value / 2**20:.0f} MiB"


def eventually(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def machine_facts() -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text()
    total = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) * 1024  # type: ignore[union-attr]
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": f"{os.cpu_count()} ({model})" if model else str(os.cpu_count()),
        "memory": f"{total / 2**30:.1f} GiB",
        "kernel": os.uname().release,
    }


def others_running() -> set[str]:
    """Test suites and other benches on this machine (what could distort the figures)."""
    result = subprocess.run(
        ["pgrep", "-af", r"pytest|bench/|bin/test|\.ci/run"], capture_output=True, text=True, check=False
    )
    mine = {os.getpid(), os.getppid()}
    found = set()
    for line in result.stdout.splitlines():
        pid, _, command = line.partition(" ")
        if int(pid) in mine or not SUITE_OR_BENCH.search(command):
            continue  # not e.g. a node daemon whose data directory is under /tmp/pytest-of-root
        found.add(command[:140])
    return found


# --- the apiserver ---------------------------------------------------------------------------------


class Kube:
    """A few direct apiserver calls (fast polls; kubectl costs a process each)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.http = cluster.api()

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: str) -> Any:
        response = self.http.get(path, params=params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.patch(
            path, content=json.dumps(body), headers={"Content-Type": "application/merge-patch+json"}
        )
        response.raise_for_status()
        return response.json()

    def delete(self, path: str) -> None:
        self.http.delete(path).raise_for_status()

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(
            f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=selector
        )["items"]
        return items

    def redbs(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(REDB_PATH)["items"]
        return items

    def secret(self, name: str) -> dict[str, str]:
        body = self.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}") or {}
        return {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}

    def endpoint_ips(self, service: str) -> set[str]:
        slices = self.get(
            f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
            labelSelector=f"kubernetes.io/service-name={service}",
        )["items"]
        return ready_addresses(slices)

    def all_endpoints(self) -> dict[str, set[str]]:
        """Ready addresses of every Service of the namespace, by Service name."""
        slices = self.get(f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices")["items"]
        by_service: dict[str, list[dict[str, Any]]] = {}
        for item in slices:
            name = (item["metadata"].get("labels") or {}).get("kubernetes.io/service-name", "")
            by_service.setdefault(name, []).append(item)
        return {name: ready_addresses(items) for name, items in by_service.items()}

    def summary(self, node: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/v1/nodes/{node}/proxy/stats/summary")
        return result

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        return str(self.cluster.kubectl("-n", NAMESPACE, *args, input=input, timeout=timeout))


def ready_addresses(slices: list[dict[str, Any]]) -> set[str]:
    return {
        address
        for item in slices
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def pod_ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions", [])
    )


# --- the cluster's REST API ------------------------------------------------------------------------


class RestApi:
    """One node's REST API over HTTPS: the pod's IP, its certificate checked for the pod's stable
    DNS name (sent as SNI) against the cluster's CA alone, Basic auth; one keep-alive connection."""

    def __init__(self, address: str, server_name: str, ca_pem: str, username: str, password: str) -> None:
        context = ssl.create_default_context(cadata=ca_pem)
        self.server_name = server_name
        self.http = httpx.Client(
            base_url=f"https://{address}:{API_PORT}", verify=context, auth=(username, password), timeout=15
        )
        self.extensions = {"sni_hostname": server_name}

    def close(self) -> None:
        self.http.close()

    def response(self, path: str) -> httpx.Response:
        return self.http.get(path, extensions=self.extensions)

    def get(self, path: str) -> Any:
        response = self.response(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str) -> httpx.Response:
        return self.http.post(path, extensions=self.extensions)


@dataclass
class Latency:
    where: str
    path: str
    times: list[float]
    errors: int
    size: int  # bytes of the last body

    def row(self) -> str:
        t = self.times
        return (
            f"p50 {ms(percentile(t, 0.5))}, p99 {ms(percentile(t, 0.99))}, mean {ms(statistics.fmean(t))}, "
            f"max {ms(max(t))}, n={len(t)}, errors {self.errors}, body {self.size / 1024:.1f} KiB"
        )


def measure_latency(api: RestApi, where: str, path: str, count: int) -> Latency:
    for _ in range(10):  # warm up: the connection, the server's caches
        api.response(path)
    times: list[float] = []
    errors = 0
    size = 0
    for _ in range(count):
        started = time.perf_counter()
        response = api.response(path)  # the whole body is read
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            errors += 1
            continue
        size = len(response.content)
        times.append(elapsed)
    return Latency(where, path, times, errors, size)


# --- memory and CPU from the kubelets --------------------------------------------------------------


@dataclass
class Reading:
    at: float  # monotonic
    phase: str
    # per container (pod uid/container name) -> (group, rss bytes, working set bytes, cpu core-ns)
    containers: dict[str, tuple[str, int, int, int]]


@dataclass
class PhaseUsage:
    rss_peak: dict[str, int] = field(default_factory=dict)
    rss_last: dict[str, int] = field(default_factory=dict)
    working_set_last: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # cores on average
    seconds: float = 0.0


class Sampler(threading.Thread):
    """Every `interval` s: /stats/summary of each node with a pod of interest. The kubelet caches
    its figures for about 10 s, so CPU is averaged over phases, not read as an instant."""

    def __init__(self, cluster: LocalCluster, interval: float = 5.0) -> None:
        super().__init__(daemon=True, name="sampler")
        self.kube = Kube(cluster)
        self.interval = interval
        self.phase = "setup"
        self.readings: list[Reading] = []
        self.others: set[str] = set()
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def set_phase(self, phase: str) -> None:
        self.read_now()
        self.phase = phase
        self.read_now()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            self.read_now()
            ticks += 1
            if ticks % 6 == 0:
                self.others |= others_running()

    def read_now(self) -> None:
        with self._lock:
            try:
                self.readings.append(self._read())
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                self.errors += 1

    def _read(self) -> Reading:
        pods = self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
        pods += self.kube.get("/api/v1/namespaces/kube-system/pods", labelSelector="k8s-app=kube-dns")[
            "items"
        ]
        groups: dict[str, str] = {}
        nodes = set()
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            if labels.get("k8s-app") == "kube-dns":
                group = "CoreDNS"
            elif labels.get("name") == "redis-enterprise-operator":
                group = "operator"
            elif all(labels.get(k) == v for k, v in NODE_LABELS.items()):
                group = "node pods"
            elif pod["metadata"]["name"].startswith(f"{REC}-services-rigger"):
                group = "rigger"
            else:
                continue
            groups[pod["metadata"]["uid"]] = group
            if pod["spec"].get("nodeName"):
                nodes.add(pod["spec"]["nodeName"])
        containers: dict[str, tuple[str, int, int, int]] = {}
        for node in sorted(nodes):
            for pod in self.kube.summary(node).get("pods") or []:
                owner = groups.get(pod["podRef"]["uid"])
                if owner is None:
                    continue
                for container in pod.get("containers") or []:
                    memory, cpu = container.get("memory") or {}, container.get("cpu") or {}
                    key = f"{pod['podRef']['uid']}/{container['name']}/{container.get('startTime')}"
                    containers[key] = (
                        owner,
                        int(memory.get("rssBytes") or 0),
                        int(memory.get("workingSetBytes") or 0),
                        int(cpu.get("usageCoreNanoSeconds") or 0),
                    )
        return Reading(time.monotonic(), self.phase, containers)

    def usage(self, phase: str) -> PhaseUsage:
        with self._lock:
            readings = [r for r in self.readings if r.phase == phase]
        result = PhaseUsage()
        if len(readings) < 2:
            return result
        result.seconds = readings[-1].at - readings[0].at
        cpu_ns: Counter[str] = Counter()
        for before, after in itertools.pairwise(readings):
            for key, (group, _, _, cpu) in after.containers.items():
                if key in before.containers:
                    cpu_ns[group] += max(0, cpu - before.containers[key][3])
        for group, total in cpu_ns.items():
            result.cpu[group] = total / 1e9 / result.seconds if result.seconds else 0.0
        for reading in readings:
            sums: Counter[str] = Counter()
            working: Counter[str] = Counter()
            for group, rss, working_set, _ in reading.containers.values():
                sums[group] += rss
                working[group] += working_set
            for group, rss in sums.items():
                result.rss_peak[group] = max(result.rss_peak.get(group, 0), rss)
                result.rss_last[group] = rss
                result.working_set_last[group] = working[group]
        return result


def operator_metrics(kube: Kube) -> dict[str, float]:
    """The operator's Prometheus counters (reconciles, errors, duration sum and count, by kind), read
    from its pod's /metrics (port 8080) from the host."""
    pod = next((p for p in kube.pods(OPERATOR_SELECTOR) if pod_ready(p)), None)
    if pod is None:
        return {}
    try:
        text = httpx.get(f"http://{pod['status']['podIP']}:8080/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    wanted = (
        "recluster_operator_reconciles_total",
        "recluster_operator_reconcile_errors_total",
        "recluster_operator_reconcile_duration_seconds_sum",
        "recluster_operator_reconcile_duration_seconds_count",
    )
    values = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


def reconcile_rows(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, str]:
    """Per kind: reconciles a second, mean duration, errors, over a window."""
    rows = {}
    for kind in (REC_KIND, REDB_KIND):
        label = f'{{kind="{kind}"}}'

        def delta(name: str, label: str = label) -> float:
            return after.get(name + label, 0.0) - before.get(name + label, 0.0)

        count = delta("recluster_operator_reconcile_duration_seconds_count")
        if count <= 0:
            continue
        mean = delta("recluster_operator_reconcile_duration_seconds_sum") / count
        errors = delta("recluster_operator_reconcile_errors_total")
        rows[kind] = f"{count / seconds:.2f}/s, mean {ms(mean)}, errors {errors:.0f} (n={count:.0f})"
    return rows


def node_process_cpu(cluster: LocalCluster, seconds: float) -> dict[str, tuple[int, float]]:
    """CPU of the node pods' processes by kind over `seconds` (cores): the pids listed in the
    containers' cgroups under this cluster's cgroupRoots, told apart by their command lines."""
    pids: list[int] = []
    for procs in Path("/sys/fs/cgroup/cpuacct").glob(f"rcl{cluster.layout.slot}-n*/kubepods/**/cgroup.procs"):
        if len(procs.parent.name) == 64:  # a container's cgroup (its id), not a pod's or a QoS class's
            pids += [int(p) for p in procs.read_text().split()]

    def kind(pid: int) -> str | None:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return None
        for needle, name in (
            ("redis-sentinel", "redis-sentinel"),
            (":3355 ", "redis-server (CCS)"),
            ("redis-server", "redis-server (shards)"),
            ("recluster node", "node daemon (Python)"),
        ):
            if needle in command:
                return name
        return None

    def ticks(pid: int) -> int | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[11]) + int(fields[12])

    kinds = {pid: kind(pid) for pid in pids}
    before = {pid: ticks(pid) for pid in pids if kinds[pid]}
    started = time.monotonic()
    time.sleep(seconds)
    after = {pid: ticks(pid) for pid in before}
    elapsed = time.monotonic() - started
    result: dict[str, tuple[int, float]] = {}
    for pid, first in before.items():
        last = after[pid]
        name = kinds[pid]
        if first is None or last is None or name is None:
            continue
        count, cores = result.get(name, (0, 0.0))
        result[name] = (count + 1, cores + (last - first) / os.sysconf("SC_CLK_TCK") / elapsed)
    return result


def process_rss(cluster: LocalCluster, kube: Kube) -> tuple[int, list[int]] | None:
    """VmRSS (bytes) of the operator container's processes: the container id from the pod's
    status, its cgroup under the node's cgroupRoot, the pids listed there."""
    pod = next((p for p in kube.pods(OPERATOR_SELECTOR) if pod_ready(p)), None)
    if pod is None:
        return None
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    pod_dir = f"pod{pod['metadata']['uid']}"
    root = Path("/sys/fs/cgroup/memory")
    for node_root in root.glob(f"rcl{cluster.layout.slot}-n*"):
        for qos in ("kubepods", "kubepods/burstable", "kubepods/besteffort"):
            procs = node_root / qos / pod_dir / container_id / "cgroup.procs"
            if procs.exists():
                pids = [int(p) for p in procs.read_text().split()]
                total = 0
                for pid in pids:
                    status = Path(f"/proc/{pid}/status").read_text()
                    found = re.search(r"VmRSS:\s+(\d+) kB", status)
                    total += int(found.group(1)) * 1024 if found else 0
                return total, pids
    return None


# --- the bench -------------------------------------------------------------------------------------


@dataclass
class FailoverRun:
    db: str
    old_pod: str
    new_pod: str
    sentinel: float | None
    endpoints: float | None
    write: float | None


@dataclass
class Report:
    facts: dict[str, str]
    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, value: str) -> None:
        self.rows.append((what, value))
        print(f"  {what}: {value}", file=sys.stderr, flush=True)

    def text(self) -> str:
        width = max(len(w) for w, _ in self.rows) if self.rows else 10
        lines = ["", "=" * 100, "bench/scale.py report", ""]
        lines += [f"  {k + ':':<10} {v}" for k, v in self.facts.items()]
        lines += ["", f"  {'measure':<{width}}  value", f"  {'-' * width}  {'-' * 60}"]
        lines += [f"  {w:<{width}}  {v}" for w, v in self.rows]
        if self.notes:
            lines += ["", *[f"  - {n}" for n in self.notes]]
        lines.append("=" * 100)
        return "\n".join(lines)


class Bench:
    def __init__(self, cluster: LocalCluster, console: Console, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.console = console
        self.args = args
        self.kube = Kube(cluster)
        self.sampler = Sampler(cluster)
        self.report = Report(machine_facts())
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:7.1f}s[/] {text}")

    # -- setup --

    def install(self) -> None:
        sample = Sample(self.cluster, REPO, NAMESPACE, self.console)
        started = time.monotonic()
        sample.install_operator(timeout=600)
        self.say(f"operator ready ({time.monotonic() - started:.0f}s)")
        self.sampler.start()
        manifest = json.dumps(rec_manifest(self.args.node_memory))
        eventually(
            "the REC to be accepted (the webhook comes up with the operator)",
            lambda: self._try(lambda: sample.apply(manifest)),
            timeout=120,
            interval=2,
        )
        started = time.monotonic()
        eventually("REC Running", self._rec_running, timeout=600, interval=2)
        self.report.add("REC apply -> Running (3 nodes)", secs(time.monotonic() - started))

    @staticmethod
    def _try(action: Callable[[], object]) -> bool | None:
        try:
            action()
        except Exception:
            return None
        return True

    def _rec_running(self) -> bool | None:
        body = self.kube.get(REC_PATH) or {}
        return True if (body.get("status") or {}).get("state") == "Running" else None

    def delete_redbs(self) -> None:
        if not self.kube.redbs():
            return
        self.say("deleting the REDBs left in the namespace ...")
        self.kube.kubectl("delete", "redb", "--all", "--wait=false")
        eventually("the REDBs to be gone", lambda: True if not self.kube.redbs() else None, 900, 3)

    def node_apis(self) -> tuple[RestApi, RestApi]:
        """REST API clients of the leader's pod and of a follower's."""
        creds = self.kube.secret(REC)
        ca = self.kube.secret(f"{REC}-tls")["ca.crt"]
        pods = {p["metadata"]["name"]: p for p in self.kube.pods(NODE_SELECTOR) if pod_ready(p)}

        def client(name: str) -> RestApi:
            server = f"{name}.{REC}.{NAMESPACE}.svc.cluster.local"
            return RestApi(pods[name]["status"]["podIP"], server, ca, creds["username"], creds["password"])

        probe = client(sorted(pods)[0])
        nodes = probe.get("/v1/nodes")
        probe.close()
        leader = next(n["name"].split(".")[0] for n in nodes if n.get("role") == "master")
        follower = next(name for name in sorted(pods) if name != leader)
        return client(leader), client(follower)

    # -- databases --

    def create(self, names: list[str], timeout: float) -> list[str]:
        """Apply the REDBs at once and wait for them to be active; the names that became active."""
        items = [redb_manifest(n) for n in names]
        started = time.monotonic()
        applying: dict[str, Any] = {}

        def apply() -> None:
            try:
                manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
                self.kube.kubectl("apply", "-f", "-", input=manifest, timeout=900)
                applying["done"] = time.monotonic() - started
                self.say(
                    f"applied {len(names)} REDB(s) in {applying['done']:.1f}s (admission webhook included)"
                )
            except Exception as exc:  # reported by the waiting loop
                applying["error"] = exc

        # one apply of all of them (each through the admission webhook), watched while it runs
        threading.Thread(target=apply, daemon=True, name="apply").start()
        wanted = set(names)
        active_at: dict[str, float] = {}
        last_line = ""
        last_print = 0.0
        while True:
            statuses: Counter[str] = Counter()
            for body in self.kube.redbs():
                name = body["metadata"]["name"]
                if name not in wanted:
                    continue
                status = (body.get("status") or {}).get("status") or "no status"
                statuses[status] += 1
                if status == "active" and name not in active_at:
                    active_at[name] = time.monotonic() - started
            elapsed = time.monotonic() - started
            line = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            if line != last_line or elapsed - last_print > 30:
                usage = self._operator_now()
                self.say(f"{len(active_at)}/{len(names)} active after {elapsed:.0f}s ({line}){usage}")
                last_line, last_print = line, elapsed
            if "error" in applying:
                raise RuntimeError(f"kubectl apply failed: {applying['error']}")
            if len(active_at) == len(names):
                break
            failed = sum(statuses[s] for s in FAILED)
            if elapsed > timeout or (failed and len(active_at) + failed == len(names)):
                self.report.notes.append(
                    f"only {len(active_at)} of {len(names)} REDBs became active "
                    f"({line} after {elapsed:.0f}s); the figures below are for the active ones"
                )
                break
            time.sleep(2)
        if active_at:
            times = sorted(active_at.values())
            self.report.add(
                f"{len(names)} REDB(s) apply -> active",
                f"first {times[0]:.1f} s, median {statistics.median(times):.1f} s, "
                f"last {times[-1]:.1f} s ({len(times)}/{len(names)} active; "
                f"the one apply of all of them took {applying.get('done', float('nan')):.1f} s)",
            )
        return sorted(active_at)

    def _operator_now(self) -> str:
        readings = self.sampler.readings
        if not readings:
            return ""
        rss = sum(c[1] for c in readings[-1].containers.values() if c[0] == "operator")
        return f"; operator RSS {mib(rss)}"

    def uid_of(self, name: str) -> int:
        body = self.kube.get(f"{REDB_PATH}/{name}") or {}
        return int((body.get("status") or {}).get("databaseUID") or 0)

    # -- figures --

    def latency(self, apis: tuple[RestApi, RestApi], label: str, uid: int) -> dict[tuple[str, str], Latency]:
        found = {}
        leader, follower = apis
        for api, where in ((leader, "leader"), (follower, "follower")):
            for path, what in (("/v1/bdbs", "list"), (f"/v1/bdbs/{uid}", "get")):
                result = measure_latency(api, where, path, self.args.requests)
                found[(where, what)] = result
                self.report.add(f"REST {what:<4} GET {path:<12} {where:<8} {label}", result.row())
        return found

    def sentinel_pings(self, label: str, count: int = 50) -> None:
        """PING round trips to each node's sentinel (port 8001) from the host: a sentinel busy with
        blocking work (DNS lookups of announced names) answers late."""
        self._sentinel_round_trips(f"sentinel PING (3 sentinels) {label}", count, 0.02, lambda c, _: c.ping())

    def discovery_latency(self, label: str, names: list[str], count: int = 300) -> None:
        """`SENTINEL GET-MASTER-ADDR-BY-NAME` round trips on each node's sentinel (the discovery
        service clients ask), over the databases in turn; issue 16's target: p99 <= 10 ms at rest."""
        self._sentinel_round_trips(
            f"discovery get-master-addr-by-name (3 sentinels) {label}",
            count,
            0.01,
            lambda c, i: c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", names[i % len(names)]),  # type: ignore[no-untyped-call]
        )

    def _sentinel_round_trips(
        self, label: str, count: int, pause: float, call: Callable[[redis.Redis, int], object]
    ) -> None:
        """`count` sequential calls on each node's sentinel, one connection each: p50, p99, max."""
        times: list[float] = []
        failures = 0
        for ip in self.pod_ips().values():
            client = redis.Redis(host=ip, port=SENTINEL_PORT, socket_timeout=10, socket_connect_timeout=5)
            try:
                for i in range(count):
                    started = time.perf_counter()
                    try:
                        call(client, i)
                        times.append(time.perf_counter() - started)
                    except (redis.RedisError, OSError):
                        failures += 1
                    time.sleep(pause)
            finally:
                client.close()
        if times:
            self.report.add(
                label,
                f"p50 {ms(percentile(times, 0.5))}, p99 {ms(percentile(times, 0.99))}, max {ms(max(times))}, "
                f"n={len(times)}, failures {failures}",
            )

    def rest_window(self, label: str, seconds: float) -> PhaseUsage:
        self.sampler.set_phase(label)
        before, started = operator_metrics(self.kube), time.monotonic()
        time.sleep(seconds)
        self.reconciles(label, before, started)
        self.sampler.set_phase(f"after {label}")
        return self.sampler.usage(label)

    def reconciles(self, label: str, before: dict[str, float], started: float) -> None:
        after = operator_metrics(self.kube)
        for kind, row in reconcile_rows(before, after, time.monotonic() - started).items():
            self.report.add(f"operator reconciles {kind.removeprefix('RedisEnterprise')} {label}", row)

    def usage_rows(self, label: str, usage: PhaseUsage) -> None:
        for group in ("operator", "rigger", "node pods", "CoreDNS"):
            if group not in usage.rss_last:
                continue
            self.report.add(
                f"{group} {label}",
                f"RSS {mib(usage.rss_last[group])} (peak {mib(usage.rss_peak[group])}, working set "
                f"{mib(usage.working_set_last[group])}), "
                f"CPU {100 * usage.cpu.get(group, 0.0):.1f}% of a core over {usage.seconds:.0f} s",
            )

    def spec_changes(self, names: list[str], api: RestApi) -> None:
        bdb_times: list[float] = []
        done_times: list[float] = []
        for step, name in enumerate(names):
            uid = self.uid_of(name)
            size = f"{100 + 10 * (step + 1)}MB"
            wanted = parse_memory_size(size)
            started = time.monotonic()
            body = self.kube.patch(f"{REDB_PATH}/{name}", {"spec": {"memorySize": size}})
            generation = int(body["metadata"]["generation"])
            at_bdb: float | None = None
            at_done: float | None = None
            while time.monotonic() - started < 300:
                now = time.monotonic() - started
                if at_bdb is None and api.get(f"/v1/bdbs/{uid}").get("memory_size") == wanted:
                    at_bdb = now
                status = ((self.kube.get(f"{REDB_PATH}/{name}") or {}).get("status")) or {}
                if (
                    at_bdb is not None
                    and status.get("status") == "active"
                    and int(status.get("observedGeneration") or 0) >= generation
                ):
                    at_done = time.monotonic() - started
                    break
                time.sleep(0.1)
            self.say(
                f"spec change {step + 1}: {name} memorySize -> {size} ({format_memory_size(wanted)}): "
                f"bdb memory_size after {secs(at_bdb)}, REDB active with observedGeneration "
                f"{generation} after {secs(at_done)}"
            )
            if at_bdb is not None:
                bdb_times.append(at_bdb)
            if at_done is not None:
                done_times.append(at_done)
        for label, values in (
            ("bdb memory_size new", bdb_times),
            ("REDB active, observedGeneration", done_times),
        ):
            if values:
                self.report.add(
                    f"spec change -> {label}",
                    f"median {secs(statistics.median(values))}, max {secs(max(values))}, "
                    f"n={len(values)}/{len(names)}",
                )

    def master_pods(self, api: RestApi) -> dict[str, str]:
        """Database name -> the pod of its master (the cluster's view)."""
        return {
            b["name"]: str(b["endpoints"][0]["dns_name"]).split(".")[0]
            for b in api.get("/v1/bdbs")
            if b.get("endpoints")
        }

    def pod_ips(self) -> dict[str, str]:
        return {
            p["metadata"]["name"]: p["status"].get("podIP", "")
            for p in self.kube.pods(NODE_SELECTOR)
            if pod_ready(p)
        }

    def db_whole(self, api: RestApi, name: str) -> bool | None:
        """Both shards active, and the Service on the master's pod."""
        uid = self.uid_of(name)
        shards = api.get(f"/v1/bdbs/{uid}/shards")
        if len(shards) != 2 or any(s.get("status") != "active" for s in shards):
            return None
        master = next(s["node_name"].split(".")[0] for s in shards if s["role"] == "master")
        ips = self.pod_ips()
        return True if self.kube.endpoint_ips(name) == {ips.get(master)} else None

    def client_of(self, name: str) -> tuple[str, int, str]:
        service = self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/{name}")
        password = self.kube.secret(f"redb-{name}")["password"]
        return service["spec"]["clusterIP"], int(service["spec"]["ports"][0]["port"]), password

    def master_server(self, name: str, pod: str) -> Server:
        """The master of `name` on `pod` as a write probe reaches it through the Service (its run_id:
        a write counts as on a new master only when another server, a master, took it)."""
        host, port, password = self.client_of(name)
        ip = self.pod_ips()[pod]  # a server announces its pod's IP

        def reached() -> Server | None:
            server = server_on(host, port, password)
            return server if server is not None and server.role == "master" and server.addr == ip else None

        return eventually(f"{name}'s master on {pod} through its Service", reached, 60)

    def failover(self, name: str, api: RestApi) -> FailoverRun:
        eventually(
            f"{name} whole (shards active, Service on the master)", lambda: self.db_whole(api, name), 300
        )
        ips = self.pod_ips()
        old_pod = self.master_pods(api)[name]
        old_ip = ips[old_pod]
        pod_at = {ip: pod for pod, ip in ips.items()}
        host, port, password = self.client_of(name)
        old = self.master_server(name, old_pod)
        sentinel_pod = next(p for p in sorted(ips) if p != old_pod)
        sentinel = redis.Redis(host=ips[sentinel_pod], port=SENTINEL_PORT, socket_timeout=2)
        found: dict[str, float] = {}
        new: dict[str, str] = {}
        stop = threading.Event()
        started = time.monotonic()

        def watch_sentinel() -> None:
            while not stop.is_set() and "sentinel" not in found:
                try:
                    addr = sentinel.execute_command(  # type: ignore[no-untyped-call]
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name
                    )
                    host = addr[0].decode() if addr else ""  # a pod IP
                    if host and host != old_ip:
                        found["sentinel"] = time.monotonic() - started
                        new["sentinel"] = pod_at.get(host, host)
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.02)

        def watch_endpoints() -> None:
            kube = Kube(self.cluster)
            try:
                while not stop.is_set() and "endpoints" not in found:
                    endpoint = kube.endpoint_ips(name)
                    if len(endpoint) == 1 and old_ip not in endpoint:
                        found["endpoints"] = time.monotonic() - started
                        new["endpoints"] = next(iter(endpoint))
                    time.sleep(0.05)
            finally:
                kube.close()

        def write() -> None:
            while not stop.is_set() and "write" not in found:
                taken = write_on(host, port, password, f"bench-{name}", timeout=1)
                if taken is not None and taken.by_new_master(old):
                    found["write"] = taken.at - started
                    new["write"] = pod_at.get(taken.server.addr, taken.server.addr)
                time.sleep(0.05)

        threads = [threading.Thread(target=t, daemon=True) for t in (watch_sentinel, watch_endpoints, write)]
        for thread in threads:
            thread.start()
        # the planned failover of the REST API (the sentinels take changes from their admin only)
        uid = next(int(b["uid"]) for b in api.get("/v1/bdbs") if b["name"] == name)
        master = next(s for s in api.get(f"/v1/bdbs/{uid}/shards") if s["role"] == "master")
        answer = api.post(f"/v1/shards/{master['uid']}/actions/failover")
        if answer.status_code != 200:
            self.report.notes.append(f"failover of {name} refused: HTTP {answer.status_code} "
                                     f"{answer.text[:200]}")
        deadline = time.monotonic() + 120
        while len(found) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        sentinel.close()
        new_pod = new.get("sentinel", "?")
        if new.get("endpoints") and ips.get(new_pod) != new["endpoints"]:
            self.report.notes.append(
                f"failover of {name}: the Service points at {new['endpoints']}, Sentinel names {new_pod}"
            )
        return FailoverRun(
            name, old_pod, new_pod, found.get("sentinel"), found.get("endpoints"), found.get("write")
        )

    def failovers(self, names: list[str], api: RestApi) -> None:
        runs = []
        for name in names:
            run = self.failover(name, api)
            runs.append(run)
            self.say(
                f"failover of {run.db} ({run.old_pod} -> {run.new_pod}): Sentinel {secs(run.sentinel)}, "
                f"Service endpoints {secs(run.endpoints)}, first write on the new master {secs(run.write)}"
            )
        pairs = [r for r in runs if r.sentinel is not None and r.endpoints is not None]
        for label, values in (
            ("planned failover -> Sentinel names the new master", [r.sentinel for r in runs]),
            ("planned failover -> Service endpoints = new master", [r.endpoints for r in runs]),
            ("  of which after Sentinel (rigger + EndpointSlice)", [r.endpoints - r.sentinel for r in pairs]),  # type: ignore[operator]
            ("planned failover -> first write via Service on new master", [r.write for r in runs]),
        ):
            got = [v for v in values if v is not None]
            if got:
                self.report.add(
                    label,
                    f"median {secs(statistics.median(got))}, max {secs(max(got))}, n={len(got)}/{len(runs)}",
                )

    def delete_node_pod(self, name: str, api: RestApi, all_names: list[str]) -> None:
        """Delete the pod of `name`'s master; every database whose master was there must move."""
        eventually(f"{name} whole", lambda: self.db_whole(api, name), 300)
        masters = self.master_pods(api)
        victim = masters[name]
        moving = sorted(db for db, pod in masters.items() if pod == victim and db in all_names)
        ips = self.pod_ips()
        others = {ip for pod, ip in ips.items() if pod != victim}
        host, port, password = self.client_of(name)
        old = self.master_server(name, victim)
        leader = any(
            n.get("role") == "master" and n["name"].split(".")[0] == victim for n in api.get("/v1/nodes")
        )
        marker, confirmed = self.write_markers(moving)
        self.say(
            f"deleting pod {victim} (leader: {leader}), holding the masters of {len(moving)} database(s); "
            f"a marker WAIT-confirmed in {len(confirmed)} of them"
        )
        moved: dict[str, float] = {}
        found: dict[str, float] = {}
        stop = threading.Event()
        started = time.monotonic()

        def watch_endpoints() -> None:
            self.watch_services_moved(moving, others, moved, stop, started)

        def write() -> None:
            while not stop.is_set() and "write" not in found:
                taken = write_on(host, port, password, f"bench-{name}", timeout=1)
                if taken is not None and taken.by_new_master(old):
                    found["write"] = taken.at - started
                time.sleep(0.05)

        threads = [threading.Thread(target=t, daemon=True) for t in (watch_endpoints, write)]
        for thread in threads:
            thread.start()
        follower = self._follow_log(victim)  # its hand-off on SIGTERM, which goes with the pod
        self.kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{victim}")
        deadline = time.monotonic() + 180
        while (len(moved) < len(moving) or "write" not in found) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        if follower is not None:
            follower.terminate()
            follower.wait(timeout=10)
        values = sorted(moved.values())
        self.say(
            f"{len(moved)}/{len(moving)} Services re-pointed; "
            f"first write on a new master {secs(found.get('write'))}"
        )
        if values:
            self.report.add(
                f"pod {victim} deleted -> Services on other pods",
                f"{len(values)}/{len(moving)} Services within 180 s: "
                f"median {secs(statistics.median(values))}, "
                f"p90 {secs(percentile(values, 0.9))}, last {secs(values[-1])} "
                f"(pod held the CCS leader: {leader})",
            )
        stayed = sorted(set(moving) - set(moved))
        if stayed:
            self.report.notes.append(
                f"after the deletion of pod {victim}, {len(stayed)} of {len(moving)} databases never left it "
                f"(their Service points at the pod that replaced it): {', '.join(stayed)}"
            )
        self.report.add("pod deleted -> first write via Service on new master", secs(found.get("write")))
        try:
            self.whole(api_factory=self.node_apis, names=all_names, timeout=600)
            self.report.add(
                "pod deleted -> cluster whole again",
                f"{time.monotonic() - started:.1f} s (3 pods ready, REC Running, every REDB and shard "
                "active)",
            )
        except TimeoutError:
            self.report.add("pod deleted -> cluster whole again", "not within 600 s")
        self.markers_kept("pod deleted", marker, confirmed)

    def watch_services_moved(
        self,
        moving: list[str],
        others: set[str],
        moved: dict[str, float],
        stop: threading.Event,
        started: float,
    ) -> None:
        """Record in `moved` when each database's Service has one endpoint, on one of `others`."""
        kube = Kube(self.cluster)
        try:
            while not stop.is_set() and len(moved) < len(moving):
                try:
                    endpoints = kube.all_endpoints()
                except httpx.HTTPError:
                    continue
                now = time.monotonic() - started
                for db in moving:
                    ips_now = endpoints.get(db, set())
                    if db not in moved and len(ips_now) == 1 and ips_now <= others:
                        moved[db] = now
                time.sleep(0.1)
        finally:
            kube.close()

    def write_markers(self, moving: list[str]) -> tuple[str, list[str]]:
        """A marker in each database that must move, confirmed on its replica (WAIT), read back at
        the end: the marker and the databases that confirmed it."""
        marker = f"scale-{int(time.time())}"
        confirmed = [db for db in moving if write_confirmed(*self.client_of(db), marker)]
        retry_until = time.monotonic() + 20  # a replica still in its first sync after a failover
        while len(confirmed) < len(moving) and time.monotonic() < retry_until:
            time.sleep(1)
            confirmed += [
                db for db in moving if db not in confirmed and write_confirmed(*self.client_of(db), marker)
            ]
        return marker, confirmed

    def markers_kept(self, label: str, marker: str, confirmed: list[str]) -> None:
        lost = [db for db in confirmed if read_marker(*self.client_of(db)) != marker]
        self.report.add(
            f"{label} -> WAIT-confirmed markers kept",
            f"{len(confirmed) - len(lost)}/{len(confirmed)}"
            + (f" (lost: {', '.join(lost)})" if lost else ""),
        )

    def node_fault(self, fault: str, api: RestApi, all_names: list[str]) -> None:
        """Stop (crash) or isolate the node under the pod holding the most masters (or the CCS
        leader's, --fault-target leader): per database
        whose master was there, the time until a surviving node's sentinel names a new master, until
        its Service points at another pod, and until a write through the Service is taken by a new
        master (issue 16: every one within 10 s). Then the node comes back and the cluster is whole."""
        masters = self.master_pods(api)
        counts = Counter(pod for db, pod in masters.items() if db in all_names)
        victim = counts.most_common(1)[0][0]
        pods = {p["metadata"]["name"]: p for p in self.kube.pods(NODE_SELECTOR)}
        if self.args.fault_target == "leader":  # the CCS fails over too: the hardest node to lose
            victim = next(n["name"].split(".")[0] for n in api.get("/v1/nodes") if n.get("role") == "master")
        elif self.args.fault_target == "rigger-leader":  # the rigger's standby must take its Lease over
            holder = self.kube.get(
                f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{REC}-services-rigger"
            )["spec"]["holderIdentity"]
            rigger_node = next(p["spec"]["nodeName"] for p in self.kube.pods(RIGGER_SELECTOR)
                               if p["metadata"]["name"] == holder)
            victim = next(name for name, p in pods.items() if p["spec"]["nodeName"] == rigger_node)
        moving = sorted(db for db, pod in masters.items() if pod == victim and db in all_names)
        node = pods[victim]["spec"]["nodeName"]
        ips = self.pod_ips()
        others = {ip for pod, ip in ips.items() if pod != victim}
        leader = any(
            n.get("role") == "master" and n["name"].split(".")[0] == victim for n in api.get("/v1/nodes")
        )
        olds = {db: self.master_server(db, victim) for db in moving}
        clients = {db: self.client_of(db) for db in moving}
        marker, confirmed = self.write_markers(moving)
        self.say(
            f"{fault} node {node} (pod {victim}, CCS leader: {leader}), holding the masters of "
            f"{len(moving)} database(s); a marker WAIT-confirmed in {len(confirmed)}"
        )
        named: dict[str, float] = {}
        moved: dict[str, float] = {}
        written: dict[str, float] = {}
        stop = threading.Event()
        started = time.monotonic()

        def watch_sentinel() -> None:
            ip = sorted(others)[0]
            client = redis.Redis(host=ip, port=SENTINEL_PORT, socket_timeout=1, socket_connect_timeout=1)
            try:
                while not stop.is_set() and len(named) < len(moving):
                    for db in moving:
                        if db in named:
                            continue
                        try:
                            addr = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", db)  # type: ignore[no-untyped-call]
                        except (redis.RedisError, OSError):
                            continue
                        if addr and addr[0].decode() in others:
                            named[db] = time.monotonic() - started
                    time.sleep(0.05)
            finally:
                client.close()

        def watch_endpoints() -> None:
            self.watch_services_moved(moving, others, moved, stop, started)

        def write(db: str) -> None:
            host, port, password = clients[db]
            while not stop.is_set() and db not in written:
                taken = write_on(host, port, password, f"bench-{db}", timeout=0.5)
                if taken is not None and taken.by_new_master(olds[db]):
                    written[db] = taken.at - started
                time.sleep(0.1)

        threads = [threading.Thread(target=t, daemon=True) for t in (watch_sentinel, watch_endpoints)]
        threads += [threading.Thread(target=write, args=(db,), daemon=True) for db in moving]
        for thread in threads:
            thread.start()
        if fault == "stop":
            self.cluster.stop_node(node)
        else:
            self.cluster.isolate_node(node)
        deadline = time.monotonic() + 120
        while min(len(named), len(moved), len(written)) < len(moving) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        for label, found in (
            ("a surviving sentinel names a new master", named),
            ("Service on another pod", moved),
            ("first write via Service on a new master", written),
        ):
            values = sorted(found.values())
            within = sum(1 for v in values if v <= 10)
            self.report.add(
                f"node {fault} ({len(moving)} masters) -> {label}",
                f"{len(values)}/{len(moving)} within 120 s, {within} within 10 s"
                + (
                    f": median {secs(statistics.median(values))}, p95 {secs(percentile(values, 0.95))}, "
                    f"last {secs(values[-1])}"
                    if values
                    else ""
                ),
            )
        self.say(
            f"node {fault}: {len(named)}/{len(moving)} named, {len(moved)} Services moved, "
            f"{len(written)} written on a new master; the node comes back"
        )
        if fault == "stop":
            self.cluster.start_node(node, timeout=180)
        else:
            self.cluster.heal_node(node)
        try:
            self.whole(api_factory=self.node_apis, names=all_names, timeout=600)
            self.report.add(f"node {fault} -> cluster whole again", f"{time.monotonic() - started:.1f} s")
        except TimeoutError:
            self.report.add(f"node {fault} -> cluster whole again", "not within 600 s")
        self.markers_kept(f"node {fault}", marker, confirmed)
        unchanged = [db for db in moving if db not in written]
        if unchanged:
            self.report.notes.append(
                f"node {fault}: no write on a new master within 120 s for {', '.join(unchanged)}"
            )

    def _follow_log(self, pod: str) -> subprocess.Popen[bytes] | None:
        """With --logs: `kubectl logs -f` of a pod about to be deleted, into <logs>/<pod>-deleted.log."""
        if self.args.logs is None:
            return None
        self.args.logs.mkdir(parents=True, exist_ok=True)
        kubectl = str(self.cluster.kube_dir() / "kubectl")
        with open(self.args.logs / f"{pod}-deleted.log", "wb") as out:
            return subprocess.Popen(
                [
                    kubectl,
                    "--kubeconfig",
                    str(self.cluster.kubeconfig_path),
                    "-n",
                    NAMESPACE,
                    "logs",
                    "-f",
                    pod,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def whole(
        self, api_factory: Callable[[], tuple[RestApi, RestApi]], names: list[str], timeout: float
    ) -> None:
        def check() -> bool | None:
            pods = [p for p in self.kube.pods(NODE_SELECTOR) if pod_ready(p)]
            if len(pods) < 3 or not self._rec_running():
                return None
            active = {
                b["metadata"]["name"]
                for b in self.kube.redbs()
                if (b.get("status") or {}).get("status") == "active"
            }
            if not set(names) <= active:
                return None
            try:  # finding the leader asks a node, which may be the one just back at a new address
                leader, follower = api_factory()
            except httpx.HTTPError:
                return None
            try:
                shards = leader.get("/v1/shards")
            except httpx.HTTPError:
                return None
            finally:
                leader.close()
                follower.close()
            return True if shards and all(s.get("status") == "active" for s in shards) else None

        eventually("the cluster whole again", check, timeout, interval=2)

    # -- the run --

    def run(self) -> None:
        args = self.args
        count = args.databases
        names = [db_name(i) for i in range(count)]
        self.report.notes.append(f"also running at the start: {sorted(others_running()) or 'nothing'}")
        self.install()
        self.delete_redbs()

        # one database: the baseline
        self.sampler.set_phase("create 1")
        first = self.create(names[:1], timeout=300)
        if not first:
            raise SystemExit("the first REDB did not become active")
        apis = self.node_apis()
        self.report.add(
            "REST API measured on", f"leader {apis[0].server_name}, follower {apis[1].server_name}"
        )
        uid0 = self.uid_of(names[0])
        base = self.latency(apis, "(1 db)", uid0)
        rest1 = self.rest_window("at rest, 1 db", args.rest_seconds / 2)
        self.usage_rows("at rest, 1 db", rest1)
        self.sentinel_pings("at rest, 1 db")
        self.discovery_latency("at rest, 1 db", first)

        # the rest
        self.sampler.set_phase("converging")
        before, started = operator_metrics(self.kube), time.monotonic()
        active = first + self.create(names[1:], timeout=args.timeout)
        self.reconciles(f"while {count - 1} REDBs converge", before, started)
        converging = self.sampler.usage("converging")
        self.usage_rows(f"while {count - 1} REDBs converge", converging)
        time.sleep(10)  # let the last status writes and the rigger's Services settle
        rest_n = self.rest_window(f"at rest, {len(active)} dbs", args.rest_seconds)
        self.usage_rows(f"at rest, {len(active)} dbs", rest_n)
        self.sentinel_pings(f"at rest, {len(active)} dbs")
        self.discovery_latency(f"at rest, {len(active)} dbs", active)
        for name, (processes, cores) in sorted(node_process_cpu(self.cluster, 20).items()):
            self.report.add(
                f"  node pods at rest, {len(active)} dbs: {name}",
                f"{100 * cores:.1f}% of a core ({processes} processes, 20 s)",
            )
        for group in ("operator", "rigger", "node pods"):
            if group in rest1.rss_last and group in rest_n.rss_last:
                self.report.add(
                    f"{group} RSS ratio {len(active)} dbs / 1 db",
                    f"{rest_n.rss_last[group] / max(1, rest1.rss_last[group]):.2f}",
                )
        checked = process_rss(self.cluster, self.kube)
        if checked is not None:
            self.report.add(
                "operator VmRSS (its pids via the container's cgroup)",
                f"{mib(checked[0])} (pids {checked[1]}); "
                f"stats/summary said {mib(rest_n.rss_last.get('operator', 0))}",
            )

        self.sampler.set_phase("measuring")
        apis[0].close()
        apis[1].close()
        apis = self.node_apis()
        full = self.latency(apis, f"({len(active)} dbs)", uid0)
        for key, result in full.items():
            ratio = statistics.median(result.times) / statistics.median(base[key].times)
            self.report.add(f"REST {key[1]} {key[0]} p50 ratio {len(active)} dbs / 1 db", f"{ratio:.2f}")

        # spec changes and failovers on databases spread over the list
        pool = active[1:] if len(active) > 1 else active
        step = max(1, len(pool) // max(1, args.spec_changes))
        targets = pool[::step][: args.spec_changes]
        self.spec_changes(targets, apis[0])

        masters = self.master_pods(apis[0])
        chosen: list[str] = []
        # from the end of the list (the REDBs changed above come first), masters on different nodes
        candidates = [n for n in pool[::-1] if n in masters] if args.failovers else []
        candidates.sort(key=lambda n: n in targets)  # stable: the changed ones last, for small counts
        for name in candidates:
            if masters[name] not in {masters[c] for c in chosen} or len(chosen) >= 3:
                chosen.append(name)
            if len(chosen) == args.failovers:
                break
        self.failovers(chosen, apis[0])

        if args.pod_deletions:
            apis[0].close()
            apis[1].close()
            apis = self.node_apis()
            masters = self.master_pods(apis[0])
            leader = apis[0].server_name.split(".")[0]
            victim_db = next((n for n in pool if masters.get(n) not in (None, leader)), pool[0])
            self.delete_node_pod(victim_db, apis[0], active)
        for fault in args.node_faults:
            apis[0].close()
            apis[1].close()
            apis = self.node_apis()
            self.node_fault(fault, apis[0], active)
        apis[0].close()
        apis[1].close()
        self.report.notes.append(
            "also running during the run (sampled every 30 s): "
            f"{sorted(self.sampler.others - set()) or 'nothing'}"
        )

    def logs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            text = self.kube.kubectl("logs", "deploy/redis-enterprise-operator", "--tail=-1", timeout=60)
        except Exception as exc:
            text = f"cannot read the logs: {exc}"
        (directory / "redis-enterprise-operator.log").write_text(text)
        # every rigger replica: after a fault on the leader's node the standby's log tells the story
        for pod in self.kube.pods(NODE_SELECTOR) + self.kube.pods(RIGGER_SELECTOR):
            name = pod["metadata"]["name"]
            try:
                text = self.kube.kubectl("logs", name, "--tail=-1", timeout=60)
            except Exception as exc:
                text = f"cannot read the logs: {exc}"
            (directory / f"{name}.log").write_text(text)


def write_confirmed(host: str, port: int, password: str, value: str) -> bool:
    """SET scale-marker through the Service, then WAIT for one replica (2 s): True when confirmed."""
    connection = redis.Redis(
        host=host, port=port, password=password, socket_timeout=5, socket_connect_timeout=2
    )
    try:
        connection.set("scale-marker", value)
        return int(connection.execute_command("WAIT", 1, 2000)) >= 1  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError):
        return False
    finally:
        connection.close()


def read_marker(host: str, port: int, password: str) -> str | None:
    connection = redis.Redis(
        host=host, port=port, password=password, socket_timeout=5, socket_connect_timeout=2
    )
    try:
        value = connection.get("scale-marker")
        return value.decode() if isinstance(value, bytes) else None
    except (redis.RedisError, OSError):
        return None
    finally:
        connection.close()


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--databases", type=int, default=100, help="REDBs to create (default 100)")
    parser.add_argument("--requests", type=int, default=300, help="REST requests per figure (300)")
    parser.add_argument("--spec-changes", type=int, default=5, help="REDBs whose memorySize changes (5)")
    parser.add_argument("--failovers", type=int, default=3, help="Sentinel failovers (3)")
    parser.add_argument(
        "--pod-deletions",
        type=int,
        choices=(0, 1),
        default=1,
        help="delete a node pod at the end (1) or not (0)",
    )
    parser.add_argument(
        "--node-faults",
        type=lambda v: [f for f in v.split(",") if f],
        default=["stop", "isolate"],
        help="node faults at the end, in order (stop,isolate; '' for none)",
    )
    parser.add_argument(
        "--fault-target",
        choices=("most-masters", "leader", "rigger-leader"),
        default="most-masters",
        help="the node of the node faults: the pod holding the most masters, the CCS leader's, or the "
             "one beside the rigger replica that holds its Lease",
    )
    parser.add_argument("--rest-seconds", type=float, default=60, help="window at rest (60 s; 1 db: half)")
    parser.add_argument("--timeout", type=float, default=900, help="for the REDBs to be active (900 s)")
    parser.add_argument("--node-memory", default="3Gi", help="memory limit of a node pod (3Gi)")
    parser.add_argument("--state-dir", type=Path, default=None, help="use this running local cluster")
    parser.add_argument("--keep", action="store_true", help="with --state-dir: leave the REDBs there")
    parser.add_argument("--logs", type=Path, default=None, help="save the operator, rigger, node logs here")
    args = parser.parse_args()
    if args.databases < 4:
        parser.error("--databases must be at least 4 (a baseline, spec changes and failovers)")
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, interrupt)  # a kill runs the finally blocks too, as Ctrl-C does
    workdir: Path | None = None
    if args.state_dir is not None:
        loaded = LocalCluster.load(args.state_dir)
        if loaded is None:
            raise SystemExit(f"no local cluster in {args.state_dir}")
        cluster = loaded
    else:
        workdir = Path(tempfile.mkdtemp(prefix="rc-bench-scale-"))
        cluster = LocalCluster.create(workdir / "cluster", name="scale", fsync=False)
    bench: Bench | None = None
    try:
        started = time.monotonic()
        cluster.up(console, timeout=400, nodes=3)
        bench = Bench(cluster, console, args)
        bench.report.add("local cluster up (3 nodes)", secs(time.monotonic() - started))
        bench.run()
        print(bench.report.text(), flush=True)
    except BaseException:
        if bench is not None and bench.report.rows:
            print(bench.report.text() + "\n(incomplete: the run failed)", flush=True)
        raise
    finally:
        if bench is not None:
            bench.sampler.stop()
            if args.logs is not None:
                bench.logs(args.logs)
            if args.state_dir is not None and not args.keep:
                bench.delete_redbs()
            bench.kube.close()
        if workdir is not None:
            cluster.down(console)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
