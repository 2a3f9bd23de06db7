"""A seeded, bounded chaos run on a local cluster: while one writer per replicated database keeps
writing through Sentinel with `WAIT 1`, faults are injected one at a time, chosen at random with
--seed, and after each one the run waits (bounded) until every invariant holds again.

    .venv/bin/python bench/chaos.py [--seed 1] [--faults 30] [--max-minutes 28] [--databases 3]

Setup, as `recluster local up` does it: a new local cluster (3 nodes) in a temporary state directory,
the operator from deploy/bundle.yaml plus the admission manifests in the namespace `chaos`, the REC of
examples/rec-persistent.yaml and --databases replicated REDBs (100MB; persistence alternating
disabled / aofEverySecond).

Faults (kinds, in shuffled rounds so each kind comes up; targets chosen with the same seed):
  pod-delete         a REC node pod deleted (graceful: the node hands its masters over on SIGTERM)
  pod-force-delete   a REC node pod deleted with --grace-period=0 --force
  shard-kill         SIGKILL to the redis-server of a database's master shard (pid from the node's
                     pid file, checked against /proc/<pid>/cmdline, through kubectl exec)
  sentinel-kill      SIGKILL to a node's redis-sentinel (same way)
  daemon-kill        SIGKILL to a node daemon from the host (the container's init process, found by
                     the container id in /proc/<pid>/cgroup): the container restarts with its shards
  operator-delete    the operator's pod deleted
  rigger-delete      the services rigger's pod deleted
  node-stop          a whole local node stopped (kubelet, containers, containerd) for 20-40 s
  node-isolate       a local node cut off the bridge for 15-30 s, then healed
  apiserver-stop     kube-apiserver stopped for 10-20 s, then started again

Invariants, checked after every fault once it is healed and --settle seconds passed, polled until
they all hold (twice, --stable seconds apart) or --recovery-timeout passes:
  inv1 confirmed-writes   every write WAIT confirmed is on the current master (all keys read back)
  inv2 one-writable-master at most one shard per database takes writes (ROLE master and a probe
                          SET succeeds; read-only and NOREPLICAS masters do not count); exactly one
                          is needed to call the database recovered
  inv3 rec-running / redb-active   the REC is Running and every REDB active
  inv4 service-to-master  the `<db>` Service's ready EndpointSlice addresses are exactly the
                          master's pod IP (and a connection to its cluster IP reaches a master)
plus health conditions that recovery waits for (not invariants): 3/3 node pods ready, the operator
and rigger Deployments ready, both shards active, the master's replica online, every sentinel
naming the same master.

A violation: an invariant (or a health condition) still false at the bound; a confirmed write missing
once every other condition holds; two writable masters for more than 10 s while the REC is Running,
every REDB active and every node pod ready (shorter overlaps, e.g. while a partition heals, are shown
as notes). Printed: every fault (kind, target, time, how long it was held, recovery time, the longest
time any writer went without a confirmed write), median / p95 / max of the recovery per kind and
overall, the writers' counts, every violation with details; exit status 1 when there was a violation
(or the run was interrupted). The cluster is torn down at the end, also on Ctrl-C or SIGTERM;
--artifacts DIR (or a violation) keeps the pods' logs and the cluster's logs first.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console

from recluster.api.naming import APP, APP_LABEL, CLUSTER_LABEL, NODE_ROLE, ROLE_LABEL
from recluster.api.ports import SENTINEL_PORT
from recluster.api.rec import KIND as REC_KIND
from recluster.api.rec import PLURAL as REC_PLURAL
from recluster.api.redb import API_VERSION as REDB_API_VERSION
from recluster.api.redb import KIND as REDB_KIND
from recluster.api.redb import PLURAL as REDB_PLURAL
from recluster.local.cluster import LocalCluster
from recluster.local.nodes import LocalNode
from recluster.local.paths import repo_dir
from recluster.local.run import CommandError
from recluster.local.sample import Sample

NAMESPACE = "chaos"
REC = "rec"
NODE_SELECTOR = f"{APP_LABEL}={APP},{CLUSTER_LABEL}={REC},{ROLE_LABEL}={NODE_ROLE}"
NODE_CONTAINER = "redis-enterprise-node"
OPERATOR_DEPLOYMENT = "redis-enterprise-operator"
RIGGER_DEPLOYMENT = f"{REC}-services-rigger"
DATA_DIR = "/var/opt/redislabs"  # the node pods' volume (operator/specs/statefulset.py)
NODES = 3
KINDS = (
    "pod-delete",
    "pod-force-delete",
    "shard-kill",
    "sentinel-kill",
    "daemon-kill",
    "operator-delete",
    "rigger-delete",
    "node-stop",
    "node-isolate",
    "apiserver-stop",
)
PERSISTENCE = ("disabled", "aofEverySecond")
DUAL_MASTER_GRACE = 10.0  # seconds two writable masters may coexist once Kubernetes looks settled

STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {message}", flush=True)


def connect(host: str, port: int, password: str | None, timeout: float) -> redis.Redis:
    """A client without redis-py's own retries (8.x retries a failed command 10 times with backoff
    by default, which would hide outages from the writers and slow every probe)."""
    return redis.Redis(
        host,
        port,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2),
        retry=Retry(NoBackoff(), 0),
    )


def command(client: redis.Redis, *args: Any) -> Any:
    """One Redis command (redis-py's execute_command is untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# ---- the cluster as the run sees it -------------------------------------------------------------


@dataclass
class Database:
    name: str
    uid: str
    port: int
    password: str
    cluster_ip: str
    persistence: str


class Kube:
    """kubectl in the run's namespace, with short timeouts (the apiserver may be down)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def run(self, *args: str, input: str | None = None, timeout: float = 20) -> str:
        return self.cluster.kubectl("-n", NAMESPACE, *args, input=input, timeout=timeout)

    def json(self, *args: str, timeout: float = 20) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout))


class PodCache:
    """Node pod name -> IP, refreshed whenever kubectl answers; the writers and probes use the last
    known addresses while the apiserver is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ips: dict[str, str] = {}

    def update(self, pods: list[dict[str, Any]]) -> None:
        ips = {
            p["metadata"]["name"]: p["status"]["podIP"]
            for p in pods
            if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")
        }
        with self._lock:
            self._ips.update(ips)

    def ips(self) -> dict[str, str]:
        with self._lock:
            return dict(self._ips)

    def name_of(self, ip: str) -> str:
        return next((name for name, known in self.ips().items() if known == ip), ip)


def host_to_ip(host: str, pods: PodCache, cluster: LocalCluster) -> str | None:
    """Sentinel announces pod IPs (a sentinel config older than that: the pods' DNS names,
    rec-1.rec.chaos.svc.cluster.local)."""
    if host in pods.ips().values():
        return host
    known = pods.ips().get(host.split(".")[0])
    if known:
        return known
    try:
        return cluster.resolve(host, timeout=2)[0]
    except (CommandError, IndexError):
        return None


def sentinel_master(db: Database, ip: str, pods: PodCache, cluster: LocalCluster) -> str | None:
    """The master's pod IP according to the sentinel at `ip`."""
    client = connect(ip, SENTINEL_PORT, None, timeout=2)
    try:
        reply = command(client, "SENTINEL", "get-master-addr-by-name", db.name)
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
    if not reply:
        return None
    host = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    return host_to_ip(host, pods, cluster)


# ---- writers ------------------------------------------------------------------------------------


class Writer(threading.Thread):
    """SET <tag>:<i> i, then WAIT 1 <ms>: a write is confirmed only when a replica has it. The master
    is found through the nodes' sentinels (port 8001 at the pod IPs) and checked with ROLE."""

    def __init__(
        self, db: Database, pods: PodCache, cluster: LocalCluster, tag: str, wait_ms: int, interval: float
    ) -> None:
        super().__init__(daemon=True, name=f"writer-{db.name}")
        self.db, self.pods, self.cluster = db, pods, cluster
        self.tag, self.wait_ms, self.interval = tag, wait_ms, interval
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.confirmed: list[int] = []
        self.reported_lost: set[int] = set()
        self.attempts = self.unconfirmed = self.errors = 0
        self.last_confirmed = time.monotonic()
        self.longest_gap = 0.0
        self.window_start, self.window_gap = time.monotonic(), 0.0
        self.last_event = ""
        self.printed: dict[str, float] = {}

    def key(self, i: int) -> str:
        return f"{self.tag}:{i}"

    def connect(self) -> tuple[redis.Redis, str]:
        ips = list(self.pods.ips().values())
        random.shuffle(ips)  # not the run's seeded generator: this is timing, not a choice of fault
        for ip in ips:
            address = sentinel_master(self.db, ip, self.pods, self.cluster)
            if address is None:
                continue
            master = connect(address, self.db.port, self.db.password, timeout=self.wait_ms / 1000 + 3)
            try:
                if command(master, "ROLE")[0] == b"master":
                    return master, self.pods.name_of(address)
            except (redis.RedisError, OSError):
                pass
            master.close()
        raise redis.ConnectionError("no master found through Sentinel")

    def mark(self) -> None:
        """Start a new window for `window_gap` (at each fault)."""
        with self.lock:
            self.window_start, self.window_gap = time.monotonic(), 0.0

    def window(self) -> float:
        """The longest time without a confirmed write since `mark`, the current stretch included."""
        with self.lock:
            ongoing = time.monotonic() - max(self.last_confirmed, self.window_start)
            return max(self.window_gap, ongoing)

    def event(self, text: str) -> None:
        """A progress line when the writer's situation changes; one that flaps (a master refusing
        writes, found again) is repeated at most every 15 s."""
        now = time.monotonic()
        if text != self.last_event and now - self.printed.get(text, -60.0) > 15:
            log(f"  writer {self.db.name}: {text}")
            self.printed[text] = now
        self.last_event = text

    def run(self) -> None:
        connection: redis.Redis | None = None
        misses = 0
        i = 0
        while not self.stopping.is_set():
            try:
                if connection is None:
                    connection, pod = self.connect()
                    self.event(f"writing to the master on {pod}")
                self.attempts += 1
                connection.set(self.key(i), i)
                acked = int(command(connection, "WAIT", 1, self.wait_ms))
                if acked >= 1:
                    now = time.monotonic()
                    with self.lock:
                        self.confirmed.append(i)
                        self.longest_gap = max(self.longest_gap, now - self.last_confirmed)
                        self.window_gap = max(
                            self.window_gap, now - max(self.last_confirmed, self.window_start)
                        )
                        self.last_confirmed = now
                    misses = 0
                else:
                    self.unconfirmed += 1
                    misses += 1
                    if misses >= 3:  # a master without its replica: look again (a failover?)
                        self.event("WAIT 1 confirmed none of 3 writes; looking for the master again")
                        connection.close()
                        connection, misses = None, 0
                i += 1
            except (redis.RedisError, OSError, CommandError) as exc:
                self.errors += 1
                i += 1  # the key may or may not be written; never confirmed, never reused
                self.event(f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}")
                if connection is not None:
                    connection.close()
                connection = None
                self.stopping.wait(0.3)
            self.stopping.wait(self.interval)
        if connection is not None:
            connection.close()

    def to_check(self) -> list[int]:
        with self.lock:
            return [i for i in self.confirmed if i not in self.reported_lost]


# ---- observation --------------------------------------------------------------------------------


@dataclass
class ShardView:
    pod: str
    ip: str
    role: str  # master / slave / down
    writable: bool
    detail: str
    replica_online: bool = False


@dataclass
class Observation:
    conditions: dict[str, tuple[bool, str]]  # name -> (holds, what was seen)
    writable: dict[str, list[str]]  # db -> pods whose shard took the probe write
    lost: dict[str, list[int]]  # db -> confirmed writes not on the master

    def unmet(self) -> list[str]:
        return [name for name, (ok, _) in self.conditions.items() if not ok]


def probe_shard(db: Database, pod: str, ip: str) -> ShardView:
    client = connect(ip, db.port, db.password, timeout=2)
    try:
        role = command(client, "ROLE")
        name = role[0].decode()
        if name != "master":
            return ShardView(pod, ip, name, False, name)
        info = client.info("replication")
        online = any(
            isinstance(value, dict) and value.get("state") == "online"
            for key, value in info.items()
            if str(key).startswith("slave")
        )
        try:
            client.set("chaos:probe", pod, px=30000)
            return ShardView(pod, ip, "master", True, "master, takes writes", online)
        except redis.ResponseError as exc:
            return ShardView(pod, ip, "master", False, f"master refusing writes: {str(exc)[:60]}", online)
    except (redis.RedisError, OSError) as exc:
        reason = "refused" if "refused" in str(exc) else type(exc).__name__
        return ShardView(pod, ip, "down", False, reason)
    finally:
        client.close()


def missing_keys(writer: Writer, ip: str) -> list[int]:
    keys = writer.to_check()
    client = connect(ip, writer.db.port, writer.db.password, timeout=10)
    try:
        missing: list[int] = []
        for start in range(0, len(keys), 2000):
            batch = keys[start : start + 2000]
            values = client.mget([writer.key(i) for i in batch])
            missing += [i for i, value in zip(batch, values, strict=True) if value is None]
        return missing
    finally:
        client.close()


class Observer:
    def __init__(
        self,
        cluster: LocalCluster,
        kube: Kube,
        pods: PodCache,
        dbs: list[Database],
        writers: dict[str, Writer],
    ) -> None:
        self.cluster, self.kube, self.pods, self.dbs, self.writers = cluster, kube, pods, dbs, writers
        self.pool = ThreadPoolExecutor(max_workers=12)

    def objects(self) -> dict[str, list[dict[str, Any]]] | str:
        try:
            listing = self.kube.json(
                "get",
                f"pods,{REC_PLURAL},{REDB_PLURAL},endpointslices.discovery.k8s.io,"
                "deployments",
                timeout=15,
            )
        except (CommandError, ValueError) as exc:
            return f"kubectl: {str(exc).splitlines()[-1][:80] if str(exc) else 'failed'}"
        grouped: dict[str, list[dict[str, Any]]] = {}
        for item in listing.get("items") or []:
            grouped.setdefault(item.get("kind", ""), []).append(item)
        return grouped

    def observe(self) -> Observation:
        conditions: dict[str, tuple[bool, str]] = {}
        objects = self.objects()
        kube_error = objects if isinstance(objects, str) else None
        grouped = objects if isinstance(objects, dict) else {}
        node_pods = [
            p
            for p in grouped.get("Pod", [])
            if (p["metadata"].get("labels") or {}).get("redis.io/role") == "node"
            and (p["metadata"].get("labels") or {}).get("redis.io/cluster") == REC
        ]
        if node_pods:
            self.pods.update(node_pods)

        # health: pods and deployments
        if kube_error:
            conditions["health node-pods-ready"] = (False, kube_error)
        else:
            ready = sorted(
                p["metadata"]["name"]
                for p in node_pods
                if not p["metadata"].get("deletionTimestamp")
                and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (p.get("status") or {}).get("conditions") or []
                )
            )
            conditions["health node-pods-ready"] = (len(ready) == NODES, f"{len(ready)}/{NODES} ready")
            deployments = {d["metadata"]["name"]: d for d in grouped.get("Deployment", [])}
            for label, name in (("operator", OPERATOR_DEPLOYMENT), ("rigger", RIGGER_DEPLOYMENT)):
                status = (deployments.get(name) or {}).get("status") or {}
                ok = (status.get("readyReplicas") or 0) >= 1 and not status.get("unavailableReplicas")
                conditions[f"health {label}-ready"] = (ok, f"{status.get('readyReplicas') or 0} ready")

        # inv3: the REC and the REDBs
        if kube_error:
            conditions["inv3 rec-running"] = (False, kube_error)
        else:
            rec = next(
                (r for r in grouped.get(REC_KIND, []) if r["metadata"]["name"] == REC), {}
            )
            state = (rec.get("status") or {}).get("state") or "no status"
            conditions["inv3 rec-running"] = (state == "Running", f"state {state}")
        redbs = {r["metadata"]["name"]: r for r in grouped.get(REDB_KIND, [])}
        slices = grouped.get("EndpointSlice", [])

        # shard roles, on every known pod IP, for every database, in parallel
        ips = self.pods.ips()
        views: dict[str, list[ShardView]] = {}
        futures = {
            (db.name, pod): self.pool.submit(probe_shard, db, pod, ip)
            for db in self.dbs
            for pod, ip in ips.items()
        }
        for (name, _), future in futures.items():
            views.setdefault(name, []).append(future.result())
        sentinel_futures = {
            (db.name, pod): self.pool.submit(sentinel_master, db, ip, self.pods, self.cluster)
            for db in self.dbs
            for pod, ip in ips.items()
        }
        writable: dict[str, list[str]] = {}
        lost: dict[str, list[int]] = {}
        for db in self.dbs:
            shards = views.get(db.name, [])
            masters = [s for s in shards if s.writable]
            writable[db.name] = [s.pod for s in masters]
            seen = ", ".join(f"{s.pod}:{s.detail}" for s in shards)
            conditions[f"inv2 one-writable-master {db.name}"] = (len(masters) == 1, seen)
            master = masters[0] if len(masters) == 1 else None
            if master is None:
                role_masters = [s for s in shards if s.role == "master"]
                master = role_masters[0] if len(role_masters) == 1 else None

            # inv1: every confirmed write on the master
            if master is None:
                conditions[f"inv1 confirmed-writes {db.name}"] = (False, "no single master to read from")
            else:
                try:
                    missing = missing_keys(self.writers[db.name], master.ip)
                    lost[db.name] = missing
                    total = len(self.writers[db.name].to_check())
                    conditions[f"inv1 confirmed-writes {db.name}"] = (
                        not missing,
                        f"{total - len(missing)}/{total} on {master.pod}",
                    )
                except (redis.RedisError, OSError) as exc:
                    conditions[f"inv1 confirmed-writes {db.name}"] = (
                        False,
                        f"read-back: {type(exc).__name__}",
                    )

            # inv3: the REDB
            status = (redbs.get(db.name) or {}).get("status") or {}
            value = status.get("status") or (kube_error or "no status")
            conditions[f"inv3 redb-active {db.name}"] = (value == "active", f"status {value}")
            shard_statuses = status.get("shardStatuses") or {}
            conditions[f"health shards-active {db.name}"] = (
                shard_statuses == {"active": 2},
                kube_error or f"shards {shard_statuses}",
            )

            # inv4: the Service's endpoints and its cluster IP
            if kube_error:
                conditions[f"inv4 service-to-master {db.name}"] = (False, kube_error)
            else:
                addresses = sorted(
                    address
                    for item in slices
                    if (item["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == db.name
                    for endpoint in item.get("endpoints") or []
                    if (endpoint.get("conditions") or {}).get("ready")
                    for address in endpoint.get("addresses") or []
                )
                via_service = probe_shard(db, "service", db.cluster_ip)
                ok = master is not None and master.writable and addresses == [master.ip]
                conditions[f"inv4 service-to-master {db.name}"] = (
                    ok and via_service.role == "master",
                    f"endpoints {addresses or 'none'}, master {master.ip if master else 'unknown'}, "
                    f"cluster IP {db.cluster_ip}: {via_service.detail}",
                )

            # health: the replica online, the sentinels agreeing on the master
            conditions[f"health replica-online {db.name}"] = (
                master is not None and master.replica_online,
                "replica online" if master is not None and master.replica_online else "no online replica",
            )
            answers = {pod: sentinel_futures[(db.name, pod)].result() for pod in ips}
            agree = (
                master is not None and len(answers) == NODES and all(a == master.ip for a in answers.values())
            )
            conditions[f"health sentinels-agree {db.name}"] = (
                agree,
                ", ".join(
                    f"{pod}->{self.pods.name_of(a) if a else 'none'}" for pod, a in sorted(answers.items())
                ),
            )
        return Observation(conditions, writable, lost)


# ---- faults -------------------------------------------------------------------------------------


@dataclass
class Violation:
    fault: int
    kind: str
    invariant: str
    detail: str


@dataclass
class Fault:
    index: int
    kind: str
    target: str = ""
    wall: str = ""
    injected: float = 0.0  # monotonic
    held: float = 0.0  # seconds the fault lasted (timed faults: node stop/isolate, apiserver stop)
    recovered: float | None = None  # seconds from injection to every invariant holding
    write_gap: float = 0.0  # the longest time any writer went without a confirmed write meanwhile
    notes: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)


class Chaos:
    def __init__(self, cluster: LocalCluster, args: argparse.Namespace, images: list[Path]) -> None:
        self.cluster, self.args, self.images = cluster, args, images
        self.kube = Kube(cluster)
        self.rng = random.Random(args.seed)
        self.pods = PodCache()
        self.quiet = Console(stderr=True, quiet=True)
        self.dbs: list[Database] = []
        self.writers: dict[str, Writer] = {}
        self.faults: list[Fault] = []
        self.violations: list[Violation] = []
        self.observer: Observer | None = None

    # -- setup --

    def setup(self) -> None:
        console = Console(stderr=True)
        sample = Sample(self.cluster, Path(repo_dir()), NAMESPACE, console)
        log(f"installing the operator (deploy/bundle.yaml, admission) in namespace {NAMESPACE}")
        sample.install_operator(timeout=600)
        rec_text = (Path(repo_dir()) / "examples" / "rec-persistent.yaml").read_text()
        if self.args.slave_ha_grace_period is not None:
            rec = yaml.safe_load(rec_text)
            rec["spec"]["slaveHA"] = {"slaveHAGracePeriod": self.args.slave_ha_grace_period}
            rec_text = yaml.safe_dump(rec)
            log(f"the REC's slaveHA.slaveHAGracePeriod: {self.args.slave_ha_grace_period} s")
        self.apply_retrying("examples/rec-persistent.yaml", lambda: sample.apply(rec_text))
        names = [f"db{i + 1}" for i in range(self.args.databases)]
        for i, name in enumerate(names):
            body = {
                "apiVersion": REDB_API_VERSION,
                "kind": REDB_KIND,
                "metadata": {"name": name},
                "spec": {
                    "redisEnterpriseCluster": {"name": REC},
                    "memorySize": "100MB",
                    "replication": True,
                    "persistence": PERSISTENCE[i % len(PERSISTENCE)],
                },
            }
            self.apply_retrying(f"REDB {name}", partial(sample.apply, json.dumps(body)))
        self.wait_for("REC Running", lambda: self.rec_state() == "Running", 900)
        for i, name in enumerate(names):
            status = self.wait_for(f"REDB {name} active", partial(self.redb_active, name), 600)
            password = self.wait_for(
                f"secret redb-{name}", partial(self.secret, f"redb-{name}", "password"), 120
            )
            cluster_ip = self.wait_for(f"Service {name}", partial(self.service_ip, name), 180)
            self.dbs.append(
                Database(
                    name,
                    str(status["databaseUID"]),
                    int(status["internalEndpoints"][0]["port"]),
                    password,
                    cluster_ip,
                    PERSISTENCE[i % len(PERSISTENCE)],
                )
            )
        self.pods.update(self.kube.json("get", "pods", "-l", NODE_SELECTOR)["items"])
        tag = f"w{int(time.time())}"
        for db in self.dbs:
            log(
                f"database {db.name}: uid {db.uid}, port {db.port}, persistence {db.persistence}, "
                f"Service {db.cluster_ip}"
            )
            self.writers[db.name] = Writer(
                db, self.pods, self.cluster, tag, self.args.wait_ms, self.args.interval
            )
        self.observer = Observer(self.cluster, self.kube, self.pods, self.dbs, self.writers)

    def apply_retrying(self, what: str, apply: Callable[[], None]) -> None:
        def attempt() -> bool:
            try:
                apply()
                return True
            except CommandError:
                return False  # refused until the webhook serves with the CA the operator published

        self.wait_for(f"{what} accepted", attempt, 180)

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        log(f"waiting for {what} (at most {timeout:.0f} s)")
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = probe()
            except (CommandError, ValueError, KeyError, IndexError):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise SystemExit(f"setup: timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(2)

    def rec_state(self) -> str:
        return str((self.kube.json("get", "rec", REC).get("status") or {}).get("state") or "")

    def redb_active(self, name: str) -> dict[str, Any] | None:
        status: dict[str, Any] = self.kube.json("get", "redb", name).get("status") or {}
        return status if status.get("status") == "active" and status.get("internalEndpoints") else None

    def secret(self, name: str, key: str) -> str | None:
        data = self.kube.json("get", "secret", name).get("data") or {}
        return base64.b64decode(data[key]).decode() if key in data else None

    def service_ip(self, name: str) -> str | None:
        return str(self.kube.json("get", "service", name)["spec"].get("clusterIP") or "") or None

    # -- the run --

    def schedule(self) -> list[str]:
        kinds = [k for k in KINDS if k in self.args.kinds]
        plan: list[str] = []
        while len(plan) < self.args.faults:
            round_ = list(kinds)
            self.rng.shuffle(round_)
            plan += round_
        return plan[: self.args.faults]

    def run(self) -> None:
        for writer in self.writers.values():
            writer.start()
        log(
            f"writers started ({len(self.writers)}, WAIT 1 {self.args.wait_ms} ms, a write every "
            f"{self.args.interval * 1000:.0f} ms); waiting for a healthy start"
        )
        baseline = Fault(0, "baseline")
        baseline.injected = time.monotonic()
        self.recover(baseline, bound=300)
        if baseline.violations:
            log("the cluster is not healthy before any fault; stopping")
            return
        deadline = time.monotonic() + self.args.max_minutes * 60
        plan = self.schedule()
        log(f"schedule (seed {self.args.seed}): {', '.join(plan)}")
        for index, kind in enumerate(plan, start=1):
            if time.monotonic() > deadline:
                log(f"--max-minutes {self.args.max_minutes} reached after {index - 1} faults; stopping")
                break
            fault = Fault(index, kind)
            self.faults.append(fault)
            fault.wall = time.strftime("%H:%M:%S")
            for writer in self.writers.values():
                writer.mark()
            fault.injected = time.monotonic()
            try:
                getattr(self, "fault_" + kind.replace("-", "_"))(fault)
            except (CommandError, RuntimeError, redis.RedisError, OSError) as exc:
                fault.notes.append(f"injection failed: {str(exc).splitlines()[0][:160]}")
                log(f"fault {index}: {kind} could not be injected: {exc}")
            self.recover(fault, bound=self.args.recovery_timeout)
            fault.write_gap = max(writer.window() for writer in self.writers.values())
            self.violations += fault.violations
            status = (
                f"recovered in {fault.recovered:.1f} s" if fault.recovered is not None else "NOT recovered"
            )
            log(
                f"fault {index}/{len(plan)} {kind} {fault.target}: {status}, longest time without a "
                f"confirmed write {fault.write_gap:.1f} s"
                + (f", {len(fault.violations)} violation(s)" if fault.violations else "")
            )
            if fault.recovered is None and not self.healthy_again():
                log("the cluster did not come back; stopping the run")
                break

    def healthy_again(self) -> bool:
        """After a fault that did not recover in time: one more bound for the cluster to heal before
        the next fault (so one failure is not counted again for every later fault)."""
        extra = Fault(-1, "extra")
        extra.injected = time.monotonic()
        self.recover(extra, bound=self.args.recovery_timeout, record=False)
        return extra.recovered is not None

    def recover(self, fault: Fault, bound: float, record: bool = True) -> None:
        """Poll every condition until all hold twice, --stable seconds apart, or `bound` seconds after
        the fault was healed; name what is awaited when it changes."""
        assert self.observer is not None
        healed = time.monotonic()
        if fault.index > 0:
            time.sleep(self.args.settle)
        first_ok: float | None = None
        last_unmet: list[str] | None = None
        max_writable: dict[str, int] = {}
        dual_since: dict[str, float] = {}
        obs: Observation | None = None
        while True:
            now = time.monotonic()
            obs = self.observer.observe()
            for name, pods in obs.writable.items():
                if len(pods) > max_writable.get(name, 0):
                    max_writable[name] = len(pods)
                if len(pods) > 1 and record:
                    fault.notes.append(f"{now - fault.injected:.0f} s: {name} writable on {', '.join(pods)}")
            unmet = obs.unmet()
            if unmet != last_unmet:
                what = "; ".join(f"{name} [{obs.conditions[name][1][:110]}]" for name in unmet) or "all hold"
                log(f"  {fault.kind}: {now - fault.injected:5.1f} s, waiting for: {what}")
                last_unmet = unmet
            # two writable masters for longer than a failover takes, while Kubernetes looks settled
            kube_settled = all(
                ok
                for name, (ok, _) in obs.conditions.items()
                if name.startswith(("inv3 ", "health node-pods", "health shards"))
            )
            for db, pods in obs.writable.items():
                if len(pods) < 2:
                    dual_since.pop(db, None)
                    continue
                dual_since.setdefault(db, now)
                if record and kube_settled and now - dual_since[db] >= DUAL_MASTER_GRACE:
                    self.violate(
                        fault,
                        f"inv2 one-writable-master {db}",
                        f"writable on {', '.join(pods)} for {now - dual_since[db]:.0f} s "
                        "while the REC is Running and every REDB active",
                    )
            others = [u for u in unmet if not u.startswith("inv1 ")]
            if not others:
                # settled: every other condition holds, so the master read from is the only one
                for db, missing in obs.lost.items():
                    if missing and record:
                        self.lose(fault, db, missing)
                if not unmet or all(u.startswith("inv1 ") for u in unmet):
                    if first_ok is None:
                        first_ok = now
                    elif now - first_ok >= self.args.stable:
                        fault.recovered = first_ok - fault.injected
                        break
            else:
                first_ok = None
            if now - healed > bound:
                if record:
                    for name in unmet:
                        if name.startswith(("inv", "health")):
                            self.violate(
                                fault,
                                name,
                                f"still false {bound:.0f} s after the fault was healed: "
                                f"{obs.conditions[name][1]}",
                            )
                break
            time.sleep(1)
        if record:
            for name, count in max_writable.items():
                if count > 1:
                    fault.notes.append(f"{name}: up to {count} writable masters seen while recovering")

    def violate(self, fault: Fault, invariant: str, detail: str) -> None:
        if any(v.invariant == invariant and v.fault == fault.index for v in fault.violations):
            return
        violation = Violation(fault.index, fault.kind, invariant, detail)
        fault.violations.append(violation)
        log(f"  VIOLATION after fault {fault.index} ({fault.kind} {fault.target}): {invariant}: {detail}")

    def lose(self, fault: Fault, db: str, missing: list[int]) -> None:
        writer = self.writers[db]
        with writer.lock:
            writer.reported_lost.update(missing)
        shown = ", ".join(writer.key(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        self.violate(
            fault,
            f"inv1 confirmed-writes {db}",
            f"{len(missing)} WAIT-confirmed write(s) missing on the master (keys {missing[0]}.."
            f"{missing[-1]}): {shown}",
        )

    # -- targets --

    def node_pods(self) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = self.kube.json("get", "pods", "-l", NODE_SELECTOR)["items"]
        self.pods.update(pods)
        return sorted(
            (p for p in pods if not p["metadata"].get("deletionTimestamp")),
            key=lambda p: p["metadata"]["name"],
        )

    def pick_pod(self) -> dict[str, Any]:
        pods = self.node_pods()
        if not pods:
            raise RuntimeError("no node pod")
        return pods[self.rng.randrange(len(pods))]

    def exec_kill(self, pod: str, pid_file: str, marker: str) -> str:
        """SIGKILL the process a pid file names, only when /proc/<pid>/cmdline holds `marker`."""
        script = (
            f'pid=$(cat {pid_file}) && tr "\\0" " " < /proc/$pid/cmdline | grep -q "{marker}" '
            f'&& kill -9 "$pid" && echo "$pid"'
        )
        out = self.kube.run("exec", pod, "-c", NODE_CONTAINER, "--", "sh", "-c", script, timeout=30)
        return out.strip()

    def delete_deployment_pod(self, fault: Fault, deployment: str) -> None:
        selector = self.kube.json("get", "deployment", deployment)["spec"]["selector"]["matchLabels"]
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = [
            p
            for p in self.kube.json("get", "pods", "-l", labels)["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]
        if not pods:
            raise RuntimeError(f"no pod of {deployment}")
        name = pods[self.rng.randrange(len(pods))]["metadata"]["name"]
        fault.target = name
        log(f"fault {fault.index}: {fault.kind}: deleting pod {name}")
        self.kube.run("delete", "pod", name, "--wait=false")

    def master_pod(self, db: Database) -> tuple[str, str]:
        for ip in self.pods.ips().values():
            address = sentinel_master(db, ip, self.pods, self.cluster)
            if address is not None:
                return self.pods.name_of(address), address
        raise RuntimeError(f"no sentinel names a master of {db.name}")

    # -- the faults --

    def fault_pod_delete(self, fault: Fault) -> None:
        pod = self.pick_pod()["metadata"]["name"]
        fault.target = pod
        log(f"fault {fault.index}: pod-delete: deleting {pod} (graceful)")
        self.kube.run("delete", "pod", pod, "--wait=false")

    def fault_pod_force_delete(self, fault: Fault) -> None:
        pod = self.pick_pod()["metadata"]["name"]
        fault.target = pod
        log(f"fault {fault.index}: pod-force-delete: deleting {pod} --grace-period=0 --force")
        self.kube.run("delete", "pod", pod, "--grace-period=0", "--force", "--wait=false")

    def fault_shard_kill(self, fault: Fault) -> None:
        db = self.dbs[self.rng.randrange(len(self.dbs))]
        pod, _ = self.master_pod(db)
        directory = f"{DATA_DIR}/shards/{db.uid}"
        fault.target = f"{db.name}@{pod}"
        pid = self.exec_kill(pod, f"{directory}/redis.pid", f"{directory}/redis.conf")
        fault.target += f" pid {pid}"
        log(f"fault {fault.index}: shard-kill: SIGKILL to the master shard of {db.name} on {pod} (pid {pid})")

    def fault_sentinel_kill(self, fault: Fault) -> None:
        pod = self.pick_pod()["metadata"]["name"]
        pid = self.exec_kill(pod, f"{DATA_DIR}/sentinel/sentinel.pid", f"{DATA_DIR}/sentinel/sentinel.conf")
        fault.target = f"{pod} pid {pid}"
        log(f"fault {fault.index}: sentinel-kill: SIGKILL to the sentinel of {pod} (pid {pid})")

    def fault_daemon_kill(self, fault: Fault) -> None:
        pod = self.pick_pod()
        name = pod["metadata"]["name"]
        status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == NODE_CONTAINER)
        container = str(status["containerID"]).split("://", 1)[1]
        node = self.cluster.node(pod["spec"]["nodeName"])
        pid = container_init(node, container)
        if pid is None:
            raise RuntimeError(f"no process of container {container[:12]} on {node.name}")
        os.kill(pid, signal.SIGKILL)
        fault.target = f"{name} host pid {pid}"
        log(
            f"fault {fault.index}: daemon-kill: SIGKILL to the node daemon of {name} "
            f"(container {container[:12]}, host pid {pid})"
        )

    def fault_operator_delete(self, fault: Fault) -> None:
        self.delete_deployment_pod(fault, OPERATOR_DEPLOYMENT)

    def fault_rigger_delete(self, fault: Fault) -> None:
        self.delete_deployment_pod(fault, RIGGER_DEPLOYMENT)

    def pick_node(self) -> LocalNode:
        nodes = self.cluster.nodes
        return nodes[self.rng.randrange(len(nodes))]

    def fault_node_stop(self, fault: Fault) -> None:
        node = self.pick_node()
        hold = self.rng.uniform(20, 40)
        fault.target = node.name
        log(f"fault {fault.index}: node-stop: stopping {node.name} for {hold:.0f} s")
        self.cluster.stop_node(node.name)
        time.sleep(max(0.0, hold - (time.monotonic() - fault.injected)))
        log(f"  starting {node.name} again")
        self.cluster.start_node(node.name, self.quiet, timeout=180, images=self.images)
        fault.held = time.monotonic() - fault.injected

    def fault_node_isolate(self, fault: Fault) -> None:
        node = self.pick_node()
        hold = self.rng.uniform(15, 30)
        fault.target = node.name
        log(f"fault {fault.index}: node-isolate: cutting {node.name} off for {hold:.0f} s")
        self.cluster.isolate_node(node.name)
        try:
            time.sleep(hold)
        finally:
            log(f"  healing {node.name}")
            self.cluster.heal_node(node.name)
        fault.held = time.monotonic() - fault.injected

    def fault_apiserver_stop(self, fault: Fault) -> None:
        hold = self.rng.uniform(10, 20)
        fault.target = "kube-apiserver"
        log(f"fault {fault.index}: apiserver-stop: stopping kube-apiserver for {hold:.0f} s")
        self.cluster.stop_control_plane_component("kube-apiserver")
        try:
            time.sleep(max(0.0, hold - (time.monotonic() - fault.injected)))
        finally:
            log("  starting kube-apiserver again")
            self.cluster.start_control_plane(self.quiet, timeout=120)
        fault.held = time.monotonic() - fault.injected

    # -- the end --

    def final_check(self) -> None:
        """Every confirmed write, read back once more after the writers stopped."""
        assert self.observer is not None
        for writer in self.writers.values():
            writer.stopping.set()
        for writer in self.writers.values():
            writer.join(timeout=15)
        obs = self.observer.observe()
        final = Fault(len(self.faults) + 1, "final")
        for db in self.dbs:
            missing = obs.lost.get(db.name)
            if missing:
                self.lose(final, db.name, missing)
            elif missing is None:
                self.violate(
                    final,
                    f"inv1 confirmed-writes {db.name}",
                    f"could not read back: {obs.conditions[f'inv1 confirmed-writes {db.name}'][1]}",
                )
        self.violations += final.violations

    def report(self) -> None:
        print()
        print(
            f"chaos run: seed {self.args.seed}, {len(self.faults)} faults, {len(self.dbs)} databases "
            f"(replicated; persistence {', '.join(db.persistence for db in self.dbs)}), {NODES} nodes"
        )
        header = f"{'#':>3} {'time':8} {'kind':17} {'target':38} {'held':>6} {'recovery':>9} {'no-write':>8}"
        print(f"{header}  notes")
        for f in self.faults:
            recovered = f"{f.recovered:8.1f}s" if f.recovered is not None else "  NEVER  "
            if f.recovered is None and "interrupted" in f.notes:
                recovered = "   -     "
            held = f"{f.held:5.1f}s" if f.held else "     -"
            notes = "; ".join(f.notes[:3]) + (f" (+{len(f.notes) - 3})" if len(f.notes) > 3 else "")
            flag = f" [{len(f.violations)} violation(s)]" if f.violations else ""
            row = f"{f.index:3d} {f.wall:8} {f.kind:17} {f.target[:38]:38} {held:>6} {recovered:>9}"
            row += f" {f.write_gap:7.1f}s"
            print(f"{row}  {notes}{flag}")
        print()
        print("recovery time (fault injected -> every invariant and health condition holds):")
        print(f"  {'kind':17} {'n':>3} {'median':>8} {'p95':>8} {'max':>8}")
        groups: dict[str, list[float]] = {}
        for f in self.faults:
            if f.recovered is not None:
                groups.setdefault(f.kind, []).append(f.recovered)
        for kind in [k for k in KINDS if k in groups]:
            values = groups[kind]
            print(
                f"  {kind:17} {len(values):3d} {statistics.median(values):7.1f}s "
                f"{percentile(values, 0.95):7.1f}s {max(values):7.1f}s"
            )
        everything = [v for values in groups.values() for v in values]
        if everything:
            print(
                f"  {'overall':17} {len(everything):3d} {statistics.median(everything):7.1f}s "
                f"{percentile(everything, 0.95):7.1f}s {max(everything):7.1f}s"
            )
        gaps = [f.write_gap for f in self.faults]
        if gaps:
            print(
                f"longest time without a confirmed write per fault (any database): median "
                f"{statistics.median(gaps):.1f} s, p95 {percentile(gaps, 0.95):.1f} s, max {max(gaps):.1f} s"
            )
        never = [f for f in self.faults if f.recovered is None and "interrupted" not in f.notes]
        if never:
            print(f"  not recovered within {self.args.recovery_timeout:.0f} s: {len(never)}")
        print()
        print("writers (SET then WAIT 1):")
        for name, w in self.writers.items():
            print(
                f"  {name}: {w.attempts} writes, {len(w.confirmed)} confirmed by WAIT, {w.unconfirmed} not "
                f"confirmed, {w.errors} errors, longest time without a confirmed write "
                f"{w.longest_gap:.1f} s; confirmed writes lost: {len(w.reported_lost)}"
            )
        print()
        if not self.violations:
            print(f"violations: none ({len(self.faults)} faults)")
            return
        print(f"violations: {len(self.violations)}")
        for v in self.violations:
            print(f"  after fault {v.fault} ({v.kind}): {v.invariant}: {v.detail}")


def container_init(node: LocalNode, container_id: str) -> int | None:
    """The host pid of a container's first process (pid 1 in its namespace), found among the node's
    cgroup members by the container id in /proc/<pid>/cgroup."""
    for pid in sorted(node.cgroup_pids()):
        try:
            if container_id not in Path(f"/proc/{pid}/cgroup").read_text():
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
        if nspid and nspid[-1] == "1":
            return pid
    return None


def save_artifacts(cluster: LocalCluster, kube: Kube, directory: Path) -> None:
    """The pods' logs (current and previous), the objects and events, the cluster's own logs and the
    shards' logs under the nodes' volumes."""
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(CommandError):
        (directory / "objects.yaml").write_text(
            kube.run("get", "pods,rec,redb,svc,endpointslices,deploy,sts", "-o", "yaml", timeout=30)
        )
        (directory / "events.txt").write_text(
            kube.run("get", "events", "--sort-by=.lastTimestamp", timeout=30)
        )
    with contextlib.suppress(CommandError, ValueError):
        for pod in kube.json("get", "pods")["items"]:
            name = pod["metadata"]["name"]
            for previous in (False, True):
                suffix = ".previous" if previous else ""
                with contextlib.suppress(CommandError):
                    text = kube.run(
                        "logs", name, "--all-containers", *(["--previous"] if previous else []), timeout=30
                    )
                    (directory / f"{name}{suffix}.log").write_text(text)
    logs = directory / "cluster"
    for path in cluster.state_dir.rglob("*.log"):
        with contextlib.suppress(OSError):
            target = logs / path.relative_to(cluster.state_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    print(f"artifacts kept in {directory}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=30)
    parser.add_argument("--max-minutes", type=float, default=28, help="no fault starts after this")
    parser.add_argument("--databases", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma list of fault kinds")
    parser.add_argument("--settle", type=float, default=5, help="seconds after a fault before checking")
    parser.add_argument("--stable", type=float, default=3, help="every condition must hold this long")
    parser.add_argument("--recovery-timeout", type=float, default=180, help="bound per fault, seconds")
    parser.add_argument("--wait-ms", type=int, default=2000, help="the writers' WAIT timeout")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between a writer's writes")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="the cluster's state (default: temporary)"
    )
    parser.add_argument("--slave-ha-grace-period", type=int, default=None,
                        help="the REC's slaveHA.slaveHAGracePeriod: seconds before a down node's replicas "
                             "move (default: the REC's default, 15)")
    parser.add_argument("--artifacts", type=Path, default=None, help="keep logs here (always on a violation)")
    parser.add_argument("--keep-cluster", action="store_true", help="debugging: leave the cluster running")
    args = parser.parse_args()
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    state = args.state_dir or workdir / "cluster"
    console = Console(stderr=True)
    cluster = LocalCluster.create(state, name="chaos", fsync=False)
    log(f"local cluster 'chaos' (slot {cluster.layout.slot}) in {state}")
    chaos: Chaos | None = None
    failed = False
    try:
        cluster.up(console, timeout=400, nodes=NODES)
        images = cluster.images(console)
        chaos = Chaos(cluster, args, images)
        chaos.setup()
        chaos.run()
        chaos.final_check()
        chaos.report()
        failed = bool(chaos.violations)
    except KeyboardInterrupt:
        log("interrupted; tearing the cluster down")
        failed = True
        if chaos is not None and chaos.faults:
            if chaos.faults[-1].recovered is None:
                chaos.faults[-1].notes.append("interrupted")
            chaos.report()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the teardown must finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if chaos is not None:
            for writer in chaos.writers.values():
                writer.stopping.set()
            if args.artifacts is not None or chaos.violations:
                target = args.artifacts or Path(tempfile.gettempdir()) / f"chaos-artifacts-{int(time.time())}"
                with contextlib.suppress(Exception):
                    save_artifacts(cluster, chaos.kube, target)
        if args.keep_cluster:
            log(f"--keep-cluster: the cluster stays up in {state}")
        else:
            cluster.down(Console(stderr=True, quiet=True))
            log("local cluster torn down")
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
