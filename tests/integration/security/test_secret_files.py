"""Secrets at rest and in process metadata.

- Every file a node daemon (or a redis-server / redis-sentinel it started) writes that holds a
  secret is mode 0600, and no directory above it in the node's data directory is open to others.
  The files are found by scanning the data directories for the secret values (the cluster's
  password, the database password, the CCS password), and the ones known to hold secrets are
  checked even where a scan cannot see the value (the CCS's RDB compresses it). A Sentinel-driven
  failover runs first: Sentinel rewrites redis.conf (CONFIG REWRITE) of the shards it reconfigures.
- No log holds a secret.
- No secret in the argv (/proc/<pid>/cmdline) or environment (/proc/<pid>/environ) of any process of
  the cluster, and no container the operator builds gets a secret through its environment.
- The local cluster's PKI keys and the broker's sqlite state (unit level: made in a tmp dir).
"""

from __future__ import annotations

import asyncio
import fnmatch
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from tests.integration.security.support import DB_NAME, SecuredCluster

from recluster.clients.cluster_api import ClusterApiError
from recluster.node.devcluster import LoopbackCluster

# Files of a node's data directory that hold a secret by construction (relative glob, what).
SECRET_BEARING = [
    ("membership.json", "the CCS password"),
    ("tls/key.pem", "the REST API's private key"),
    ("ccs/ccs.conf", "requirepass/masterauth of the CCS"),
    ("ccs/dump.rdb", "the cluster state (database passwords), as a replica received it"),
    ("ccs/appendonlydir/*", "the CCS's AOF (the cluster state, database passwords included)"),
    ("sentinel/sentinel.conf", "auth-pass of every monitored database (internal password) and the CCS"),
    ("shards/*/redis.conf", "requirepass of the database, masterauth (its internal password)"),
]
# What must be found at least once, so the checks cannot pass on an empty directory.
REQUIRED = ["membership.json", "tls/key.pem", "ccs/ccs.conf", "sentinel/sentinel.conf", "shards/*/redis.conf"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _files(root: Path) -> Iterable[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def _private_file_problem(path: Path) -> str | None:
    mode = _mode(path)
    return None if mode & ~0o600 == 0 else f"mode {mode:#o}, expected 0600"


def _open_directories(path: Path, top: Path) -> list[str]:
    """Directories from `top` down to `path`'s parent that others may read or enter."""
    problems = []
    directory = path.parent
    while True:
        mode = _mode(directory)
        if mode & 0o007:
            problems.append(f"{directory} is mode {mode:#o} (others: {mode & 0o007:o})")
        if directory == top or top not in directory.parents:
            break
        directory = directory.parent
    return problems


async def _sentinel_failover(cluster: LoopbackCluster, name: str, timeout_s: float = 60.0) -> None:
    """Ask the REST API for a planned failover of `name` and wait until another address is master."""
    host, port = cluster.sentinels()[0]
    sentinel = aioredis.Redis(host=host, port=port, socket_timeout=2, decode_responses=True)
    try:
        before = await sentinel.sentinel_get_master_addr_by_name(name)
        deadline = time.monotonic() + timeout_s
        async with cluster.api(0) as api:
            uid = next(int(b["uid"]) for b in await api.bdbs() if b["name"] == name)
            while True:  # the sentinels know the replica only after their next INFO of the master
                try:
                    await api.fail_over_bdb(uid)
                    break
                except ClusterApiError as exc:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"the failover of {name} was refused: {exc}") from exc
                    await asyncio.sleep(0.5)
        while await sentinel.sentinel_get_master_addr_by_name(name) == before:
            assert time.monotonic() < deadline, f"{name}: no failover after {timeout_s:.0f}s"
            await asyncio.sleep(0.2)
    finally:
        await sentinel.aclose()


# ---- files on the nodes ----------------------------------------------------------------------


@pytest.mark.integration
async def test_files_holding_secrets_are_private_even_after_a_failover(secured: SecuredCluster) -> None:
    cluster = secured.cluster
    await _sentinel_failover(cluster, DB_NAME)
    await cluster.wait_ready(timeout_s=120)
    await asyncio.sleep(1.0)  # the reconfigured replicas' CONFIG REWRITE follows the switch
    values = {what: value.encode() for what, value in secured.secret_values().items()}

    problems: list[str] = []
    seen_patterns: set[str] = set()
    holders: dict[str, set[str]] = {}
    for node in cluster.nodes:
        top = node.data_dir
        for path in _files(top):
            relative = str(path.relative_to(top))
            data = path.read_bytes()
            found = sorted(what for what, value in values.items() if value in data)
            known = [(pattern, what) for pattern, what in SECRET_BEARING
                     if fnmatch.fnmatch(relative, pattern)]
            seen_patterns.update(pattern for pattern, _ in known)
            if not found and not known:
                continue
            for what in found:
                holders.setdefault(what, set()).add(relative)
            reason = ", ".join(found) or known[0][1]
            problem = _private_file_problem(path)
            if problem:
                problems.append(f"{path} holds {reason}: {problem}")
            problems += [f"{path} holds {reason}: {p}" for p in _open_directories(path, top)]

    assert not problems, "secrets readable by others:\n" + "\n".join(problems)
    assert set(REQUIRED) <= seen_patterns, f"files missing from the scan: {set(REQUIRED) - seen_patterns}"
    # the scan sees the values where they must be (so a clean result means something)
    assert "sentinel/sentinel.conf" in holders["the database's internal password"]
    assert any(fnmatch.fnmatch(p, "shards/*/redis.conf") for p in holders["the database password"])
    assert any(fnmatch.fnmatch(p, "shards/*/redis.conf") for p in holders["the database's internal password"])
    assert "ccs/ccs.conf" in holders["the CCS password"]


@pytest.mark.integration
async def test_no_log_holds_a_secret(secured: SecuredCluster) -> None:
    logs = [p for p in _files(secured.cluster.root) if p.suffix == ".log"]
    assert len(logs) >= 3, logs  # per node: the daemon's, its children's output forwarded into it
    forwarded = b"".join(path.read_bytes() for path in logs)
    for child in (b"[ccs] ", b"[sentinel] ", b"[shard of bdb "):
        assert child in forwarded, f"no {child.decode()!r} line in the daemons' logs: the scan would miss it"
    leaks = [
        f"{path}: {what}"
        for path in logs
        for what, value in secured.secret_values().items()
        if value.encode() in path.read_bytes()
    ]
    assert not leaks, "secrets in logs:\n" + "\n".join(leaks)


# ---- process arguments and environment -------------------------------------------------------


def _cluster_pids(cluster: LoopbackCluster) -> dict[int, str]:
    """pid -> command line of every process of the cluster: the recorded ones (daemons and the
    children in their pid files) and any process whose command line names the cluster's directory."""
    found: dict[int, str] = {}
    candidates = set(cluster.leftover_pids())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            candidates.add(int(entry.name))
    for pid in candidates:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        text = raw.replace(b"\0", b" ").decode(errors="replace")
        if pid in cluster.leftover_pids() or str(cluster.root) in text:
            found[pid] = text
    return found


def _proc_file(pid: int, name: str, cmd: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError as exc:
        pytest.fail(f"pid {pid} ({cmd}) vanished during the scan: {exc}")


@pytest.mark.integration
async def test_no_secret_in_process_arguments_or_environment(secured: SecuredCluster) -> None:
    cluster = secured.cluster
    processes = _cluster_pids(cluster)
    kinds = {
        "daemon": sum("-m recluster.node" in cmd for cmd in processes.values()),
        "ccs": sum("ccs.conf" in cmd for cmd in processes.values()),
        "sentinel": sum("sentinel.conf" in cmd for cmd in processes.values()),
        "shard": sum("redis.conf" in cmd for cmd in processes.values()),
    }
    assert kinds == {"daemon": 3, "ccs": 3, "sentinel": 3, "shard": 2}, processes

    leaks = []
    for pid, cmd in processes.items():
        for source in ("cmdline", "environ"):
            raw = _proc_file(pid, source, cmd)
            leaks += [f"{source} of pid {pid} ({cmd[:80]}): {what}"
                      for what, value in secured.secret_values().items() if value.encode() in raw]
    assert not leaks, "secrets visible to every local user in /proc:\n" + "\n".join(leaks)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers") or []) + list(spec.get("initContainers") or [])


@pytest.mark.unit
def test_no_container_gets_a_secret_through_its_environment() -> None:
    """In Kubernetes the processes' environment comes from the pod specs: the node, rigger and broker
    (built by the operator) and the operator itself (deploy/operator.yaml) read their credentials
    from mounted files; an env var fed from a Secret would sit in /proc/<pid>/environ."""
    from recluster.api.rec import RedisEnterpriseCluster
    from recluster.local.paths import repo_dir
    from recluster.operator.specs import build_rec_children

    rec = RedisEnterpriseCluster.model_validate({  # apiVersion and kind: the model's defaults
        "metadata": {"name": "rec", "namespace": "ns", "uid": "0000-1111"},
        "spec": {"nodes": 3, "serviceBrokerSpec": {"enabled": True}},
    })
    objects = build_rec_children(rec, image="recluster:test", password_secret_exists=True,
                                 tls_secret_exists=True)
    operator = [o for o in yaml.safe_load_all((Path(repo_dir()) / "deploy" / "operator.yaml").read_text())
                if o and o.get("kind") == "Deployment"]
    workloads = [o for o in objects if o["kind"] in ("StatefulSet", "Deployment")] + operator
    assert {o["metadata"]["name"] for o in workloads} >= {
        "rec", "rec-services-rigger", "rec-service-broker", "redis-enterprise-operator"}
    problems = []
    for obj in workloads:
        for container in _containers(obj):
            where = f"{obj['kind']} {obj['metadata']['name']} container {container['name']}"
            if container.get("envFrom"):
                problems += [f"{where}: envFrom {e}" for e in container["envFrom"] if "secretRef" in e]
            for env in container.get("env") or []:
                if "secretKeyRef" in (env.get("valueFrom") or {}):
                    problems.append(f"{where}: env {env['name']} from a Secret")
                if "PASSWORD" in env["name"].upper() and "value" in env:
                    problems.append(f"{where}: env {env['name']} holds a password")
    assert not problems, "\n".join(problems)


# ---- local PKI and the broker's state (unit level) -------------------------------------------


@pytest.mark.unit
def test_local_pki_keys_are_private(tmp_path: Path) -> None:
    from recluster.local.pki import CertificateAuthority, service_account_keys

    pki = tmp_path / "state" / "pki"
    ca = CertificateAuthority(pki)
    ca.issue(pki, "apiserver", common_name="kube-apiserver", dns_names=["localhost"],
             ip_addresses=["127.0.0.1"], server=True)
    ca.issue(pki, "admin", common_name="recluster-admin", organizations=["system:masters"], client=True)
    service_account_keys(pki)
    node_pki = tmp_path / "state" / "nodes" / "n0" / "pki"
    ca.issue(node_pki, "kubelet-client", common_name="system:node:n0", client=True)

    keys = sorted(tmp_path.rglob("*.key"))
    assert {k.name for k in keys} == {"ca.key", "apiserver.key", "admin.key", "sa.key", "kubelet-client.key"}
    problems = [f"{key}: {p}" for key in keys if (p := _private_file_problem(key))]
    problems += sorted({p for key in keys for p in _open_directories(key, key.parent)})
    assert not problems, "\n".join(problems)


@pytest.mark.unit
def test_broker_state_is_private_and_holds_no_database_password(tmp_path: Path) -> None:
    from recluster.broker.models import Binding, Instance, Operation
    from recluster.broker.store import Store

    store = Store(tmp_path / "broker")
    try:
        instance = Instance(id="i-1", service_id="s", plan_id="p", bdb_name="db-i-1",
                            parameters={"memory_size": 1024})
        store.save(instance=instance,
                   operation=Operation(id="o-1", instance_id="i-1", kind="provision", started=1.0))
        store.save(binding=Binding(instance_id="i-1", id="b-1", service_id="s", plan_id="p",
                                   username="osb-b-1", password="binding-password"))
        files = sorted((tmp_path / "broker").iterdir())
        assert "broker.sqlite3" in {f.name for f in files}
        problems = [f"{f}: {p}" for f in files if (p := _private_file_problem(f))]
        assert not problems, "\n".join(problems)
        assert "binding-password" not in repr(store.binding("i-1", "b-1"))
    finally:
        store.close()
    # the only password it keeps is each binding's own (the cluster has only hashes of it, and a
    # platform may fetch the binding again), in that private file; database passwords are read
    # from the cluster, the admin's never leaves its mounted secret
    for model in (Instance, Binding, Operation):
        fields = [name for name in model.model_fields if "pass" in name.lower()]
        assert fields == (["password"] if model is Binding else []), model



