"""`kubectl recluster status`: the REC, its nodes, databases, shards, masters and endpoints and what is
wrong with them, in the spirit of Redis Enterprise's `rladmin status`. `gather` reads (Kubernetes and
the REST API); `build_status` (pure) joins what was read into one document, the `-o json` output;
`health` (pure) lists the problems; `render_status` (pure) makes the tables people read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from recluster.admin.errors import AdminError
from recluster.admin.session import Session, pod_ordinal, pod_ready
from recluster.api.naming import BDB_UID_LABEL, CLUSTER_LABEL
from recluster.api.quorum import majority
from recluster.clients.cluster_api import ClusterApiError


@dataclass
class Observed:
    """Everything `status` reads, as read (Kubernetes objects and REST views are plain dicts)."""

    rec: dict[str, Any]
    pods: list[dict[str, Any]] = field(default_factory=list)
    redbs: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)
    cluster: dict[str, Any] | None = None  # GET /v1/cluster; None: the REST API was not read
    nodes: list[dict[str, Any]] = field(default_factory=list)  # GET /v1/nodes
    bdbs: list[dict[str, Any]] = field(default_factory=list)  # GET /v1/bdbs
    shards: list[dict[str, Any]] = field(default_factory=list)  # GET /v1/shards
    rest_pod: str | None = None  # the node pod whose REST API answered
    rest_via: str | None = None  # direct | tunnel
    rest_error: str | None = None


async def gather(session: Session, rec_name: str | None) -> Observed:
    rec = await session.rec(rec_name)
    name = rec["metadata"]["name"]
    observed = Observed(rec)
    observed.pods = await session.node_pods(rec)
    observed.redbs = [r for r in await session.redbs() if redb_cluster(r, name)]
    selector = f"{CLUSTER_LABEL}={name},{BDB_UID_LABEL}"
    observed.services = await session.list_objects("v1", "Service", selector)
    observed.slices = await session.list_objects("discovery.k8s.io/v1", "EndpointSlice", selector)
    try:
        async with session.rest(rec) as (api, access):
            observed.cluster = await api.cluster()
            observed.nodes = await api.nodes()
            observed.bdbs = await api.bdbs()
            observed.shards = await api.shards()
            observed.rest_pod, observed.rest_via = access.pod, access.via
    except (AdminError, ClusterApiError, httpx.HTTPError, OSError) as exc:
        observed.rest_error = str(exc) or type(exc).__name__
    return observed


def redb_cluster(redb: dict[str, Any], rec_name: str) -> bool:
    """Whether the REDB belongs to this REC (it names it, or names none: the namespace's REC)."""
    reference = (redb.get("spec") or {}).get("redisEnterpriseCluster") or {}
    return reference.get("name") in (None, rec_name)


# --- the document ---------------------------------------------------------------------------------


def pod_of_node(node: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
    """The node pod of a REST node: by address, else by name (`<pod>.<rec>.<ns>.svc...`)."""
    for pod in pods:
        if (pod.get("status") or {}).get("podIP") and pod["status"]["podIP"] == node.get("addr"):
            return str(pod["metadata"]["name"])
    short = str(node.get("name") or "").split(".")[0]
    names = {p["metadata"]["name"] for p in pods}
    return short if short in names else None


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def build_status(o: Observed) -> dict[str, Any]:
    rec, status = o.rec, o.rec.get("status") or {}
    ready = condition(rec, "Ready")
    pods_by_name = {p["metadata"]["name"]: p for p in o.pods}
    node_pod = {int(n["uid"]): pod_of_node(n, o.pods) for n in o.nodes}
    redb_by_uid = {
        str((r.get("status") or {}).get("databaseUID")): r for r in o.redbs
        if (r.get("status") or {}).get("databaseUID")
    }
    bdb_by_uid = {int(b["uid"]): b for b in o.bdbs}
    master_node: dict[int, int] = {
        int(s["bdb_uid"]): int(s["node_uid"]) for s in o.shards if s.get("role") == "master"
    }

    cluster = {
        "name": rec["metadata"]["name"],
        "namespace": rec["metadata"].get("namespace"),
        "state": status.get("state"),
        "specStatus": status.get("specStatus"),
        "ready": None if ready is None else ready.get("status") == "True",
        "readyMessage": (ready or {}).get("message"),
        "nodesWanted": (rec.get("spec") or {}).get("nodes"),
        "readyNodes": status.get("readyNodes"),
        "version": status.get("version") or (o.cluster or {}).get("software_version"),
        "clusterName": (o.cluster or {}).get("name"),
        "leaderNode": (o.cluster or {}).get("master_node"),
        "quorum": (o.cluster or {}).get("quorum"),
    }
    nodes = []
    for node in sorted(o.nodes, key=lambda n: int(n["uid"])):
        pod = pods_by_name.get(node_pod.get(int(node["uid"])) or "")
        nodes.append({
            "uid": int(node["uid"]),
            "pod": node_pod.get(int(node["uid"])),
            "address": node.get("addr"),
            "status": node.get("status"),
            "leader": node.get("role") == "master",
            "shards": len(node.get("shard_list") or []),
            "masters": len(node.get("master_shards") or []),
            "podReady": pod_ready(pod) if pod else None,
            "k8sNode": ((pod or {}).get("spec") or {}).get("nodeName"),
            "restarts": sum(c.get("restartCount", 0) for c in ((pod or {}).get("status") or {})
                            .get("containerStatuses") or []) if pod else None,
        })
    pods = []
    for pod in sorted(o.pods, key=lambda p: pod_ordinal(p["metadata"]["name"])):
        pod_status = pod.get("status") or {}
        pods.append({
            "name": pod["metadata"]["name"],
            "phase": pod_status.get("phase"),
            "ready": pod_ready(pod),
            "ip": pod_status.get("podIP"),
            "k8sNode": (pod.get("spec") or {}).get("nodeName"),
            "restarts": sum(c.get("restartCount", 0) for c in pod_status.get("containerStatuses") or []),
            "deleting": pod["metadata"].get("deletionTimestamp") is not None,
        })
    databases = []
    for bdb in sorted(o.bdbs, key=lambda b: int(b["uid"])):
        uid = int(bdb["uid"])
        redb = redb_by_uid.get(str(uid))
        master = master_node.get(uid)
        shards = [s for s in o.shards if int(s["bdb_uid"]) == uid]
        databases.append({
            "uid": uid,
            "name": bdb.get("name"),
            "redb": redb["metadata"]["name"] if redb else None,
            "redbStatus": ((redb or {}).get("status") or {}).get("status"),
            "status": bdb.get("status"),
            "port": bdb.get("port"),
            "replication": bool(bdb.get("replication")),
            "tls": bdb.get("tls_mode") == "enabled",
            "memorySize": bdb.get("memory_size"),
            "shards": len(shards),
            "masterNode": master,
            "masterPod": node_pod.get(master) if master is not None else None,
            "endpoint": next((f"{e['dns_name'].split('.')[0]}:{e['port']}"
                              for e in bdb.get("endpoints") or [] if e.get("dns_name")), None),
        })
    shards = []
    for shard in sorted(o.shards, key=lambda s: int(s["uid"])):
        bdb = bdb_by_uid.get(int(shard["bdb_uid"])) or {}
        shards.append({
            "uid": int(shard["uid"]),
            "bdb": int(shard["bdb_uid"]),
            "db": bdb.get("name"),
            "role": shard.get("role"),
            "node": int(shard["node_uid"]),
            "pod": node_pod.get(int(shard["node_uid"])),
            "port": bdb.get("port"),
            "status": shard.get("status"),
            "inSync": shard.get("status") == "active",
        })
    endpoints = []
    for service in sorted(o.services, key=lambda s: s["metadata"]["name"]):
        meta, spec = service["metadata"], service.get("spec") or {}
        label = meta["labels"][BDB_UID_LABEL]
        bdb_uid = int(label) if label.isdigit() else None
        targets = slice_targets(o.slices, meta["name"])
        master = master_node.get(bdb_uid) if bdb_uid is not None else None
        master_pod = node_pod.get(master) if master is not None else None
        ports = spec.get("ports") or [{}]
        endpoints.append({
            "service": meta["name"],
            "type": "Headless" if spec.get("clusterIP") == "None" else spec.get("type"),
            "clusterIP": spec.get("clusterIP"),
            "externalIPs": [i.get("ip") or i.get("hostname") for i in
                            ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []],
            "port": ports[0].get("port"),
            "bdb": bdb_uid,
            "db": (bdb_by_uid.get(bdb_uid) or {}).get("name") if bdb_uid is not None else None,
            "pods": [t[0] for t in targets],
            "addresses": [t[1] for t in targets],
            "pointsAtMaster": None if master_pod is None else [t[0] for t in targets] == [master_pod],
        })
    document: dict[str, Any] = {
        "cluster": cluster,
        "rest": {"pod": o.rest_pod, "via": o.rest_via, "error": o.rest_error},
        "pods": pods,
        "nodes": nodes,
        "databases": databases,
        "shards": shards,
        "endpoints": endpoints,
    }
    problems = health(document, o)
    document["health"] = {"ok": not problems, "problems": problems}
    return document


def slice_targets(slices: list[dict[str, Any]], service: str) -> list[tuple[str | None, str]]:
    """(pod, address) of the ready endpoints of a Service's EndpointSlices."""
    found = []
    for item in slices:
        if (item["metadata"].get("labels") or {}).get("kubernetes.io/service-name") != service:
            continue
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            pod = (endpoint.get("targetRef") or {}).get("name")
            found += [(pod, address) for address in endpoint.get("addresses") or []]
    return found


def health(d: dict[str, Any], o: Observed) -> list[str]:
    """What is wrong, one sentence each (empty: healthy)."""
    problems: list[str] = []
    c = d["cluster"]
    if c["ready"] is not True:
        problems.append(f"REC {c['name']} is not Ready (state {c['state']}): "
                        f"{c['readyMessage'] or 'no condition'}")
    elif c["state"] != "Running":
        problems.append(f"REC {c['name']} is {c['state']}")
    wanted = c["nodesWanted"] or 0
    ready_pods = [p["name"] for p in d["pods"] if p["ready"] and not p["deleting"]]
    if len(ready_pods) < wanted:
        not_ready = [p["name"] for p in d["pods"] if p["name"] not in ready_pods]
        problems.append(f"{len(ready_pods)} of {wanted} node pods ready"
                        + (f" (not ready: {', '.join(not_ready)})" if not_ready else ""))
    if d["rest"]["error"]:
        problems.append(f"the REST API did not answer: {d['rest']['error']}")
        return problems
    for node in d["nodes"]:
        if node["status"] != "active":
            problems.append(f"node {node['uid']} ({node['pod'] or node['address']}) is {node['status']}")
    active = sum(1 for n in d["nodes"] if n["status"] == "active")
    if d["nodes"] and active < majority(len(d["nodes"])):
        problems.append(f"quorum lost: {active} of {len(d['nodes'])} nodes active "
                        f"({majority(len(d['nodes']))} needed)")
    for db in d["databases"]:
        label = f"database {db['name']} (bdb {db['uid']})"
        if db["status"] != "active":
            problems.append(f"{label} is {db['status']}")
        shards = [s for s in d["shards"] if s["bdb"] == db["uid"]]
        masters = [s for s in shards if s["role"] == "master"]
        if len(masters) != 1:
            problems.append(f"{label} has {len(masters)} master shards")
        for shard in shards:
            if not shard["inSync"]:
                problems.append(f"{label}: {'master' if shard['role'] == 'master' else 'replica'} shard "
                                f"{shard['uid']} on node {shard['node']} is {shard['status']}")
        if db["replication"] and not any(s["role"] != "master" and s["inSync"] for s in shards):
            problems.append(f"{label} is replicated but has no replica in sync")
        if db["redb"] and db["redbStatus"] not in (None, "active"):
            problems.append(f"REDB {db['redb']} is {db['redbStatus']}")
        if not any(e["bdb"] == db["uid"] for e in d["endpoints"]):
            problems.append(f"{label} has no Service")
    for endpoint in d["endpoints"]:
        if not endpoint["pods"]:
            problems.append(f"Service {endpoint['service']} has no ready endpoint")
        elif endpoint["pointsAtMaster"] is False:
            master = next((db["masterPod"] for db in d["databases"] if db["uid"] == endpoint["bdb"]), None)
            pods = ", ".join(map(str, endpoint["pods"]))
            problems.append(f"Service {endpoint['service']} leads to {pods}, the master is on {master}")
    for redb in o.redbs:
        spec_status = (redb.get("status") or {}).get("specStatus")
        if spec_status and spec_status != "Valid":
            problems.append(f"REDB {redb['metadata']['name']}: spec {spec_status}")
    return problems


# --- the tables -----------------------------------------------------------------------------------


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, pad_edge=False,
                  header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    return table


def render_status(d: dict[str, Any]) -> RenderableType:
    c = d["cluster"]
    parts: list[RenderableType] = []
    summary = (f"CLUSTER {c['name']} (namespace {c['namespace']}): state {c['state']}, "
               f"Ready {_yes(c['ready'])}, {c['readyNodes'] if c['readyNodes'] is not None else '-'}/"
               f"{c['nodesWanted']} nodes ready, version {c['version'] or '-'}")
    if c["leaderNode"] is not None:
        summary += f", leader node {c['leaderNode']}"
    if d["rest"]["pod"]:
        summary += f" (REST API on {d['rest']['pod']}, {d['rest']['via']})"
    parts.append(Text(summary, style="bold"))
    parts.append(_table("NODES", ["NODE", "POD", "ADDRESS", "STATUS", "ROLE", "SHARDS", "MASTERS",
                                  "POD READY", "K8S NODE", "RESTARTS"], [
        [f"node:{n['uid']}", n["pod"], n["address"], n["status"], "leader" if n["leader"] else "follower",
         n["shards"], n["masters"], _yes(n["podReady"]), n["k8sNode"], n["restarts"]]
        for n in d["nodes"]]))
    members = {n["pod"] for n in d["nodes"]}
    strays = [p for p in d["pods"] if p["name"] not in members]
    if strays:
        parts.append(_table("PODS NOT IN THE CLUSTER", ["POD", "PHASE", "READY", "IP", "K8S NODE"], [
            [p["name"], p["phase"], _yes(p["ready"]), p["ip"], p["k8sNode"]] for p in strays]))
    parts.append(_table("DATABASES", ["DB", "NAME", "REDB", "STATUS", "PORT", "REPLICATION", "TLS",
                                      "SHARDS", "MASTER", "MEMORY"], [
        [f"db:{b['uid']}", b["name"], b["redb"], b["status"], b["port"], _yes(b["replication"]),
         _yes(b["tls"]), b["shards"],
         f"node:{b['masterNode']} ({b['masterPod']})" if b["masterNode"] is not None else None,
         _bytes(b["memorySize"])]
        for b in d["databases"]]))
    parts.append(_table("SHARDS", ["SHARD", "DB", "NAME", "ROLE", "NODE", "POD", "PORT", "STATUS",
                                   "IN SYNC"], [
        [f"redis:{s['uid']}", f"db:{s['bdb']}", s["db"], s["role"], f"node:{s['node']}", s["pod"], s["port"],
         s["status"], _yes(s["inSync"])]
        for s in d["shards"]]))
    parts.append(_table("ENDPOINTS", ["SERVICE", "TYPE", "ADDRESS", "PORT", "DB", "POD", "AT MASTER"], [
        [e["service"], e["type"], ", ".join(e["externalIPs"]) or e["clusterIP"], e["port"],
         f"db:{e['bdb']} ({e['db']})" if e["bdb"] is not None else None,
         ", ".join(map(str, e["pods"])) or None,
         _yes(e["pointsAtMaster"])]
        for e in d["endpoints"]]))
    problems = d["health"]["problems"]
    if problems:
        parts.append(Text("HEALTH: " + str(len(problems)) + " problem(s)", style="bold red"))
        parts += [Text(f"  - {p}", style="red") for p in problems]
    else:
        parts.append(Text("HEALTH: OK", style="bold green"))
    spaced: list[RenderableType] = []
    for part in parts:
        spaced += [part, Text("")]
    return Group(*spaced[:-1])


def _bytes(value: Any) -> str | None:
    if not isinstance(value, int):
        return None
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value} B"

