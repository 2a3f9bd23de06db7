"""The rigger's pure planner: from the cluster's databases (and which node pod holds each master)
and the node pods as Kubernetes has them, the Services that must exist (without selector), the
EndpointSlice of each that points at the master's pod, the Services and slices to delete, the pod
label changes and each database secret's `service_names`. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recluster.api.naming import (
    APP,
    APP_LABEL,
    BDB_LABEL_PREFIX,
    BDB_NAME,
    BDB_UID_LABEL,
    CLUSTER_LABEL,
    DEFAULT_SERVICE_TYPES,
    HEADLESS,
    LOAD_BALANCER,
    bdb_label,
    service_name,
    service_names,
)

# on every Service the rigger makes: how it finds its own Services again
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "recluster-services-rigger"
# EndpointSlices: the rigger writes those of its Services itself (they have no selector), so a
# failover moves them at the rigger's pace, not at kube-controller-manager's 20 requests/s
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
HEADLESS_LABEL = "service.kubernetes.io/headless"  # kube-proxy skips slices of headless Services


def is_bdb_label(key: str) -> bool:
    return key.startswith(BDB_LABEL_PREFIX) and key[len(BDB_LABEL_PREFIX) :].isdigit()


@dataclass(frozen=True)
class Database:
    uid: int
    name: str
    port: int
    master_pod: str | None  # the node pod that holds the master shard (None: unknown now)
    service_port: int | None = None  # REDB databaseServicePort
    secret: str | None = None  # the database secret to keep `service_names` in (None: none)
    owner: dict[str, Any] | None = None  # owner reference (the REDB) for the Services
    # the master's IP when known apart from its pod's (a Sentinel announcement names it directly)
    master_ip: str | None = None


@dataclass(frozen=True)
class Pod:
    name: str
    labels: Mapping[str, str]
    ip: str | None = None


@dataclass
class Plan:
    services: list[dict[str, Any]] = field(default_factory=list)  # to apply
    delete_services: list[str] = field(default_factory=list)
    # to apply: those of the first service type (what clients use) of every database first
    slices: list[dict[str, Any]] = field(default_factory=list)
    delete_slices: list[str] = field(default_factory=list)
    # pod -> {label: value, or None to remove}
    pod_labels: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # secret -> service names
    secret_names: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    cluster: str
    namespace: str
    types: tuple[str, ...] = DEFAULT_SERVICE_TYPES
    naming: str = BDB_NAME


def _service(settings: Settings, db: Database, service_type: str) -> dict[str, Any]:
    name = service_name(db.name, db.port, service_type, settings.naming)
    # No selector: the rigger writes the Service's EndpointSlice itself (see _slice).
    spec: dict[str, Any] = {
        "ports": [
            {"name": "redis", "protocol": "TCP", "port": db.service_port or db.port, "targetPort": db.port}
        ],
    }
    if service_type == HEADLESS:
        spec["clusterIP"] = "None"
        spec["type"] = "ClusterIP"
    elif service_type == LOAD_BALANCER:
        spec["type"] = "LoadBalancer"
    else:
        spec["type"] = "ClusterIP"
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": settings.namespace,
        "labels": _service_labels(settings, db),
    }
    if db.owner is not None:
        metadata["ownerReferences"] = [db.owner]
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def _service_labels(settings: Settings, db: Database) -> dict[str, str]:
    return {
        APP_LABEL: APP,
        CLUSTER_LABEL: settings.cluster,
        MANAGED_BY_LABEL: MANAGED_BY,
        BDB_UID_LABEL: str(db.uid),
    }


def _slice(settings: Settings, db: Database, service_type: str, pod: str, ip: str) -> dict[str, Any]:
    """The EndpointSlice of one Service: the master's pod, ready whatever its readiness says (the
    master is Sentinel's decision: a node pod whose CCS replica is still catching up after it came
    back may hold the master it promoted). Named like its Service; kube-controller-manager's own
    slices have generated names, so the two never collide."""
    name = service_name(db.name, db.port, service_type, settings.naming)
    labels = {
        **_service_labels(settings, db),
        SERVICE_NAME_LABEL: name,
        SLICE_MANAGED_BY_LABEL: MANAGED_BY,
    }
    if service_type == HEADLESS:
        labels[HEADLESS_LABEL] = ""
    metadata: dict[str, Any] = {"name": name, "namespace": settings.namespace, "labels": labels}
    if db.owner is not None:
        metadata["ownerReferences"] = [db.owner]
    endpoint = {
        "addresses": [ip],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "name": pod, "namespace": settings.namespace},
    }
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": "IPv6" if ":" in ip else "IPv4",
        "endpoints": [endpoint],
        # without a selector, the slice's port is where traffic goes (the Service's targetPort is unused)
        "ports": [{"name": "redis", "protocol": "TCP", "port": db.port}],
    }


def _slices(
    settings: Settings, databases: Sequence[Database], pod_ips: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The slices of the databases whose master pod and its IP are known, by service type first:
    after a node loss the Services clients use move before the others. A database whose master is
    unknown gets none, so its slices stay as they are."""
    result = []
    for service_type in settings.types:
        for db in databases:
            if db.master_pod is None:
                continue
            ip = db.master_ip or pod_ips.get(db.master_pod)
            if ip:
                result.append(_slice(settings, db, service_type, db.master_pod, ip))
    return result


def plan(
    settings: Settings,
    databases: Iterable[Database],
    pods: Iterable[Pod],
    existing_services: Iterable[str],
    existing_slices: Iterable[str] = (),
) -> Plan:
    """Everything the rigger should do now. `existing_services`: names of the Services it made
    before (found by MANAGED_BY_LABEL); `existing_slices`: names of the EndpointSlices it made
    (SLICE_MANAGED_BY_LABEL)."""
    result = Plan()
    databases = sorted(databases, key=lambda d: d.uid)
    pods = list(pods)
    result.slices = _slices(settings, databases, {p.name: p.ip for p in pods if p.ip})
    wanted: dict[str, str] = {}  # desired label per pod: computed below
    desired_labels: dict[str, dict[str, str]] = {}
    for db in databases:
        for service_type in settings.types:
            service = _service(settings, db, service_type)
            result.services.append(service)
            wanted[service["metadata"]["name"]] = service_type
        if db.secret:
            result.secret_names[db.secret] = service_names(db.name, db.port, settings.types, settings.naming)
        if db.master_pod is not None:
            desired_labels.setdefault(db.master_pod, {})[bdb_label(db.uid)] = str(db.uid)
    known = {db.uid for db in databases}
    unknown_master = {db.uid for db in databases if db.master_pod is None}
    for pod in pods:
        changes: dict[str, str | None] = {}
        desired = desired_labels.get(pod.name, {})
        for key, value in desired.items():
            if pod.labels.get(key) != value:
                changes[key] = value
        for key in pod.labels:
            if not is_bdb_label(key) or key in desired:
                continue
            uid = int(key[len(BDB_LABEL_PREFIX) :])
            # A database whose master is unknown right now keeps its label where it is: a moment
            # without an answer from the cluster must not take the database off its Services.
            if uid in known and uid in unknown_master:
                continue
            changes[key] = None
        if changes:
            result.pod_labels[pod.name] = changes
    result.delete_services = sorted(set(existing_services) - set(wanted))
    result.delete_slices = sorted(set(existing_slices) - set(wanted))
    return result


def slice_matches(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an EndpointSlice as the apiserver has it already says what `wanted` says: the same
    endpoints (addresses, pod, readiness), ports, address type and owners, and at least its labels.
    A replica that takes the Lease over counts those as written, so it rewrites only what changed."""
    def core(obj: Mapping[str, Any]) -> tuple[Any, ...]:
        endpoints = [(tuple(e.get("addresses") or ()), (e.get("targetRef") or {}).get("name"),
                      (e.get("conditions") or {}).get("ready")) for e in obj.get("endpoints") or ()]
        ports = [(p.get("name"), p.get("protocol"), p.get("port")) for p in obj.get("ports") or ()]
        owners = sorted(str(o.get("uid")) for o in (obj.get("metadata") or {}).get("ownerReferences") or ())
        return endpoints, ports, obj.get("addressType"), owners

    labels = (existing.get("metadata") or {}).get("labels") or {}
    return core(existing) == core(wanted) and wanted["metadata"]["labels"].items() <= labels.items()


def pod_of_node_name(node_name: str, pod_names: Iterable[str], pod_ips: Mapping[str, str]) -> str | None:
    """The pod of a node name as the cluster reports it: the pod's DNS name
    (`rec-1.rec.ns.svc.cluster.local`), its short name, or (without DNS) its IP."""
    if not node_name:
        return None
    names = set(pod_names)
    first = node_name.split(".", 1)[0]
    if first in names:
        return first
    for pod, ip in pod_ips.items():
        if ip == node_name:
            return pod
    return None


def external_addresses(services: Iterable[Mapping[str, Any]]) -> dict[int, list[str]]:
    """Each database's addresses outside the cluster (pure): the IPs and host names Kubernetes gave its
    LoadBalancer Services (`status.loadBalancer.ingress`), sorted, host names lower-cased."""
    found: dict[int, set[str]] = {}
    for service in services:
        uid = ((service.get("metadata") or {}).get("labels") or {}).get(BDB_UID_LABEL, "")
        if (service.get("spec") or {}).get("type") != "LoadBalancer" or not str(uid).isdigit():
            continue
        addresses = found.setdefault(int(uid), set())
        for entry in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            address = entry.get("ip") or entry.get("hostname")
            if address:
                addresses.add(str(address).lower())
    return {uid: sorted(addresses) for uid, addresses in found.items()}


def external_address_changes(bdbs: Iterable[Mapping[str, Any]],
                             found: Mapping[int, list[str]]) -> dict[int, list[str]]:
    """The bdbs whose `external_addr` the cluster must be told (pure): those whose LoadBalancer
    addresses differ from what the cluster has, including [] for one whose Service is gone. A bdb
    being deleted is left alone, and so is every bdb of a cluster whose nodes do not know the field
    yet (a project upgrade rolls the rigger before the last node)."""
    changes: dict[int, list[str]] = {}
    for bdb in bdbs:
        if "external_addr" not in bdb:
            continue
        uid = int(bdb["uid"])
        wanted = found.get(uid, [])
        if bdb.get("status") != "delete-pending" and sorted(bdb.get("external_addr") or []) != wanted:
            changes[uid] = wanted
    return changes
