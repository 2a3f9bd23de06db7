"""The host's path to Services: the Service range and the LoadBalancer pool are routed from the host
through one node, whose kube-proxy translates them. A real cluster's load balancer health-checks
kube-proxy (`/healthz` on port 10256) and stops sending to a node that fails; the keeper here does the
same, so losing the node that carries the route (crashed, cut off the network) costs the host about
a second of Service traffic, not all of it until the node returns.

`choose_gateway` decides (pure); `ServiceRoute` reads the route, probes the nodes and applies.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from recluster.local.layout import Layout
from recluster.local.run import run

log = logging.getLogger("recluster.serviceroute")

HEALTH_PORT = 10256  # kube-proxy's healthz (KubeProxyConfiguration.healthzBindAddress)
PROBE_SECONDS = 0.5


def choose_gateway(
    current: str | None, candidates: Sequence[str], healthy: Callable[[str], bool]
) -> str | None:
    """The node address to route through: the current one while it is healthy (no churn), else the
    first healthy candidate, else None (keep the route as it is: a route to a sick node is no worse
    than none, and it comes back by itself)."""
    if current is not None and current in candidates and healthy(current):
        return current
    return next((c for c in candidates if c != current and healthy(c)), None)


def kube_proxy_healthy(address: str, timeout: float = PROBE_SECONDS) -> bool:
    """kube-proxy answers 200 on /healthz while it runs and its rules are fresh."""
    try:
        return httpx.get(f"http://{address}:{HEALTH_PORT}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ServiceRoute:
    layout: Layout

    def prefixes(self) -> tuple[ipaddress.IPv4Network, ...]:
        return (self.layout.service_cidr, self.layout.lb_pool)

    def current(self) -> str | None:
        """The gateway of the Service range's route, None when there is none."""
        out = run(["ip", "-o", "route", "show", "exact", str(self.layout.service_cidr)], check=False).stdout
        words = out.split()
        return words[words.index("via") + 1] if "via" in words else None

    def apply(self, gateway: str) -> None:
        for prefix in self.prefixes():
            run(["ip", "route", "replace", str(prefix), "via", gateway, "dev", self.layout.bridge])

    def sync_once(
        self, candidates: Sequence[str], healthy: Callable[[str], bool] = kube_proxy_healthy
    ) -> None:
        current = self.current()
        chosen = choose_gateway(current, candidates, healthy)
        if chosen is not None and chosen != current:
            self.apply(chosen)
            log.info("Services now routed through %s (was %s: kube-proxy not healthy)", chosen, current)
