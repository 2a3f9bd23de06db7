"""LoadBalancer Services on the local cluster, as cloud-provider-kind does for kind: each one gets an
address from the cluster's pool (`Layout.lb_pool`) in its status; the host routes the pool to a
node whose kube-proxy forwards the traffic like any Service's."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

import httpx

log = logging.getLogger("recluster.loadbalancer")


def ingress_ip(service: dict[str, Any]) -> str | None:
    for entry in (service.get("status") or {}).get("loadBalancer", {}).get("ingress") or []:
        if entry.get("ip"):
            return str(entry["ip"])
    return None


def plan_addresses(services: Iterable[dict[str, Any]], pool: ipaddress.IPv4Network) -> dict[str, str]:
    """New addresses for LoadBalancer Services that have none (pure): key `<ns>/<name>` -> ip.
    Addresses already in use are kept; the lowest free ones are handed out in name order."""
    balanced = [s for s in services if s["spec"].get("type") == "LoadBalancer"]
    used = {ip for s in balanced if (ip := ingress_ip(s))}
    free = (str(a) for a in pool.hosts() if str(a) not in used)
    plan = {}
    for service in sorted(balanced, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        if ingress_ip(service) is None:
            address = next(free, None)
            if address is None:
                log.warning("the load-balancer pool %s is exhausted", pool)
                break
            plan[f"{service['metadata']['namespace']}/{service['metadata']['name']}"] = address
    return plan


class LoadBalancerController:
    def __init__(self, api: httpx.Client, pool: ipaddress.IPv4Network) -> None:
        self.api = api
        self.pool = pool

    def sync_once(self) -> None:
        services = self.api.get("/api/v1/services").json()["items"]
        for key, address in plan_addresses(services, self.pool).items():
            namespace, name = key.split("/")
            self.api.patch(
                f"/api/v1/namespaces/{namespace}/services/{name}/status",
                json={"status": {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            log.info("assigned %s to LoadBalancer Service %s", address, key)
