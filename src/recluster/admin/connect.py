"""`kubectl recluster connect <db> [-- redis-cli args]`: redis-cli at the database, with its password
and, for a TLS database, its CA. The address is the database's Service when this machine reaches it
(its ClusterIP, or a LoadBalancer's address), else the master's pod, directly or through a tunnel
(tunnel.py: `kubectl exec`, as `kubectl port-forward` cannot reach the node's processes). The
password goes to redis-cli in REDISCLI_AUTH, never on its command line (which
every user of the machine can read in /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recluster.admin.databases import resolve_database
from recluster.admin.errors import AdminError
from recluster.admin.session import DIRECT, TUNNEL, Session, reachable
from recluster.admin.status import pod_of_node, redb_cluster
from recluster.api.naming import BDB_UID_LABEL, CLUSTER_LABEL
from recluster.api.redb import RedisEnterpriseDatabase, database_secret_name

PASSWORD_ENV = "REDISCLI_AUTH"  # noqa: S105 (the variable's name, not a password)


@dataclass
class Target:
    host: str
    port: int
    how: str  # "Service <name>", "pod <name>", "a tunnel to pod <name>"


@dataclass
class Plan:
    """What `connect` runs: redis-cli's argv and environment, and the files to remove after."""

    argv: list[str]
    env: dict[str, str]
    target: Target
    database: str
    files: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def shown(self) -> dict[str, Any]:
        """The plan as printed by --dry-run: the environment's secret only named."""
        return {
            "database": self.database,
            "via": self.target.how,
            "argv": self.argv,
            "env": {key: ("<hidden>" if key == PASSWORD_ENV else value) for key, value in self.env.items()},
        }


def redis_cli_command(
    redis_cli: str,
    host: str,
    port: int,
    password: str | None,
    *,
    ca_file: str | None = None,
    server_name: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """(argv, the environment to add): the password only in the environment."""
    argv = [redis_cli, "-h", host, "-p", str(port)]
    if ca_file is not None:
        argv += ["--tls", "--cacert", ca_file]
        if server_name:
            argv += ["--sni", server_name]
    argv += list(extra)
    env = {PASSWORD_ENV: password} if password else {}
    return argv, env


def candidates(services: list[dict[str, Any]], master_pod: dict[str, Any] | None, port: int) -> list[Target]:
    """Where the database may be reached from here, best first: each Service's ClusterIP and
    LoadBalancer addresses (not headless ones: those are the pod's address), then the master's pod."""
    found: list[Target] = []
    order = {"LoadBalancer": 0, "ClusterIP": 1}
    for service in sorted(services, key=lambda s: order.get((s.get("spec") or {}).get("type", ""), 2)):
        spec, name = service.get("spec") or {}, service["metadata"]["name"]
        service_port = int(((spec.get("ports") or [{}])[0]).get("port") or port)
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            address = ingress.get("ip") or ingress.get("hostname")
            if address:
                found.append(Target(address, service_port, f"Service {name} (load balancer)"))
        if spec.get("clusterIP") not in (None, "", "None"):
            found.append(Target(spec["clusterIP"], service_port, f"Service {name}"))
    if master_pod is not None and (master_pod.get("status") or {}).get("podIP"):
        found.append(Target(master_pod["status"]["podIP"], port, f"pod {master_pod['metadata']['name']}"))
    return found


def service_server_name(services: list[dict[str, Any]], namespace: str) -> str | None:
    """The name to ask the TLS database's certificate for: its first non-headless Service's."""
    for service in services:
        if (service.get("spec") or {}).get("clusterIP") != "None":
            return f"{service['metadata']['name']}.{namespace}.svc"
    return f"{services[0]['metadata']['name']}.{namespace}.svc" if services else None


async def prepare(
    session: Session, rec_name: str | None, ref: str, redis_cli: str, extra: tuple[str, ...],
    progress: Callable[[str], None],
) -> Plan:
    rec = await session.rec(rec_name)
    name = rec["metadata"]["name"]
    redbs = [r for r in await session.redbs() if redb_cluster(r, name)]
    pods = await session.node_pods(rec)
    async with session.rest(rec) as (api, _):
        bdb, redb = resolve_database(ref, await api.bdbs(), redbs)
        uid = int(bdb["uid"])
        tls = bdb.get("tls_mode") == "enabled"
        secret = await session.secret_data(_secret_name(redb)) if redb is not None else {}
        password = secret.get("password") if redb is not None else bdb.get("authentication_redis_pass")
        ca = secret.get("ca.crt") if tls else None
        if tls and not ca:
            ca = (await api.certificates()).get("proxy_cert")
        master = next((s for s in await api.shards(uid) if s.get("role") == "master"), None)
        nodes = {str(n["uid"]): n for n in await api.nodes()}
    master_pod_name = pod_of_node(nodes[str(master["node_uid"])], pods) if master and \
        str(master["node_uid"]) in nodes else None
    master_pod = next((p for p in pods if p["metadata"]["name"] == master_pod_name), None)
    services = await session.list_objects("v1", "Service",
                                          f"{CLUSTER_LABEL}={name},{BDB_UID_LABEL}={uid}")
    port = int(bdb["port"])
    target: Target | None = None
    if session.options.via != TUNNEL:
        for candidate in candidates(services, master_pod, port):
            if await reachable(candidate.host, candidate.port):
                target = candidate
                break
    if target is None:
        if session.options.via == DIRECT:
            raise AdminError(f"database {bdb['name']}: neither its Services nor its master's pod are "
                             "reachable from here (--direct given; without it: a tunnel, kubectl exec)")
        if master_pod is None or not (master_pod.get("status") or {}).get("podIP"):
            raise AdminError(f"database {bdb['name']} has no master on a running node pod to tunnel to")
        why = "--tunnel given" if session.options.via == TUNNEL else "not reachable from here"
        progress(f"database {bdb['name']}: {why}: a tunnel to pod {master_pod_name} (kubectl exec)")
        tunnel = await session.tunnel(master_pod, port)
        target = Target("127.0.0.1", tunnel.local or 0, f"a tunnel to pod {master_pod_name}")
    files: list[str] = []
    ca_file = None
    if tls:
        if not ca:
            raise AdminError(f"database {bdb['name']} uses TLS but no CA was found (ca.crt of its Secret)")
        handle, ca_file = tempfile.mkstemp(prefix="recluster-ca-", suffix=".crt")  # 0600
        with os.fdopen(handle, "w") as out:
            out.write(ca)
        files.append(ca_file)
    server_name = service_server_name(services, session.namespace) if tls else None
    argv, env = redis_cli_command(redis_cli, target.host, target.port, password, ca_file=ca_file,
                                  server_name=server_name, extra=extra)
    return Plan(argv, env, target, str(bdb["name"]), files)


async def connect(
    session: Session, rec_name: str | None, ref: str, redis_cli: str, extra: tuple[str, ...], dry_run: bool,
    progress: Callable[[str], None], show: Callable[[str], None],
) -> int:
    """Run redis-cli (the terminal is its own) while the session, and any tunnel, lasts; its exit
    status. With `dry_run`, show the plan instead."""
    plan = await prepare(session, rec_name, ref, redis_cli, extra, progress)
    try:
        if dry_run:
            show(json.dumps(plan.shown(), indent=2))
            return 0
        progress(f"redis-cli to database {plan.database} via {plan.target.how}")
        process = await asyncio.create_subprocess_exec(*plan.argv, env={**os.environ, **plan.env})
        return await process.wait()
    finally:
        plan.cleanup()


def _secret_name(redb: dict[str, Any]) -> str:
    try:
        return RedisEnterpriseDatabase.model_validate(redb).secret_name
    except ValueError:
        spec = redb.get("spec") or {}
        return str(spec.get("databaseSecretName") or database_secret_name(redb["metadata"]["name"]))
