"""Where each database's master is, as the rigger knows it: the cluster's REST API, overridden for a
while by a Sentinel's `+switch-master` announcement (which comes first, with the new master's IP),
and the databases the plan is made of (plan.py) from the API's bdbs, the node pods and the REDBs."""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from recluster.api.redb import database_secret_name
from recluster.rigger.observe import NodePod
from recluster.rigger.plan import Database, pod_of_node_name

log = logging.getLogger(__name__)

OVERRIDE_SECONDS = 15.0  # a Sentinel's word beats the REST API's for this long (the API catches up in ~1 s)


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _api_node(bdb: dict[str, Any]) -> str:
    endpoints = bdb.get("endpoints") or []
    return str(endpoints[0].get("dns_name") or "") if endpoints else ""


class Masters:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.overrides: dict[str, tuple[str, float]] = {}  # db name -> (new master's host, when)

    def announced(self, data: bytes | str) -> bool:
        """A `+switch-master` message ("<name> <old ip> <old port> <new ip> <new port>"): whether it
        moved a database (the CCS and malformed messages do not)."""
        text = data.decode() if isinstance(data, bytes) else str(data)
        parts = text.split()
        if len(parts) != 5 or parts[0] == "ccs":
            return False
        name, new_host = parts[0], parts[3]
        previous = self.overrides.get(name)
        if previous is None or previous[0] != new_host:
            log.info("sentinel: database %s has a new master on %s", name, new_host)
        self.overrides[name] = (new_host, time.monotonic())
        return True

    def master_pod(self, bdb: dict[str, Any], pods: list[NodePod]) -> tuple[str | None, str | None]:
        """(the pod holding the database's master, the master's IP if a fresh Sentinel announcement
        gave it: announcements are by IP, which is what the EndpointSlice needs)."""
        names = [p.name for p in pods]
        ips = {p.name: p.ip for p in pods if p.ip}
        override = self.overrides.get(str(bdb.get("name")))
        if override is not None and time.monotonic() - override[1] < OVERRIDE_SECONDS:
            pod = pod_of_node_name(override[0], names, ips)
            if pod is not None:
                return pod, _ipv4(override[0])
        return pod_of_node_name(_api_node(bdb), names, ips), None

    def databases(
        self, bdbs: list[dict[str, Any]], pods: list[NodePod], redbs: dict[str, Any]
    ) -> list[Database]:
        result = []
        for bdb in bdbs:
            if bdb.get("status") == "delete-pending" or not bdb.get("port"):
                continue
            name = str(bdb["name"])
            redb = redbs.get(name)
            if redb is not None and not self._of_this_cluster(redb):
                redb = None
            spec = (redb or {}).get("spec") or {}
            secret = None
            owner = None
            if redb is not None:
                if spec.get("defaultUser", True):
                    secret = spec.get("databaseSecretName") or database_secret_name(name)
                owner = {
                    "apiVersion": redb["apiVersion"],
                    "kind": redb["kind"],
                    "name": name,
                    "uid": redb["metadata"]["uid"],
                }
            master_pod, master_ip = self.master_pod(bdb, pods)
            result.append(
                Database(
                    uid=int(bdb["uid"]),
                    name=name,
                    port=int(bdb["port"]),
                    master_pod=master_pod,
                    master_ip=master_ip,
                    service_port=spec.get("databaseServicePort"),
                    secret=secret,
                    owner=owner,
                )
            )
        return result

    def _of_this_cluster(self, redb: dict[str, Any]) -> bool:
        named = ((redb.get("spec") or {}).get("redisEnterpriseCluster") or {}).get("name")
        return named in (None, "", self.cluster)

    def end_agreed(self, bdbs: list[dict[str, Any]], pods: list[NodePod]) -> None:
        """The API agreeing with a Sentinel's announcement (a pod IP) ends the override."""
        names, ips = [p.name for p in pods], {p.name: p.ip for p in pods if p.ip}
        for bdb in bdbs:
            name = str(bdb.get("name"))
            override = self.overrides.get(name)
            api_node = _api_node(bdb)
            if override is None or not api_node:
                continue
            api_pod = pod_of_node_name(api_node, names, ips)
            if api_pod is not None and api_pod == pod_of_node_name(override[0], names, ips):
                self.overrides.pop(name, None)
