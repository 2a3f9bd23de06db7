"""The addresses, names and ports of one local cluster: pure, derived from its slot.

Every local cluster (the one `recluster local up` starts, and each test run's) takes one slot
0..15 and with it a /20 of 198.18.0.0/16 for its bridge, nodes and pods, a /20 of 198.19.0.0/16 for
Service IPs, its own bridge name, and a loopback address 127.18.<slot*16>.1 for the private ports
(etcd, controller-manager, scheduler). So two clusters on one machine never share an address,
port or interface, and nothing leaves 127.0.0.0/8 and 198.18.0.0/15.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SLOTS = 16
NODE_LIMIT = 8  # pod CIDRs: the upper /21 of the slot's /20, one /24 per node
RESERVED_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class Layout:
    name: str
    slot: int

    def __post_init__(self) -> None:
        if not 0 <= self.slot < SLOTS:
            raise ValueError(f"slot must be in 0..{SLOTS - 1}, got {self.slot}")

    @property
    def _third_octet(self) -> int:
        return self.slot * 16

    @property
    def bridge(self) -> str:
        return f"rcl{self.slot}"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        """Bridge, nodes and pods of this cluster."""
        return ipaddress.IPv4Network(f"198.18.{self._third_octet}.0/20")

    @property
    def bridge_address(self) -> str:
        """The host's address on the bridge: the apiserver binds and advertises it."""
        return f"198.18.{self._third_octet}.1"

    @property
    def bridge_cidr(self) -> str:
        return f"{self.bridge_address}/20"

    @property
    def pod_cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.18.{self._third_octet + 8}.0/21")

    @property
    def service_cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.19.{self._third_octet}.0/20")

    @property
    def lb_pool(self) -> ipaddress.IPv4Network:
        """Addresses for LoadBalancer Services: on the bridge's subnet, routed by the host to a node."""
        return ipaddress.IPv4Network(f"198.18.{self._third_octet}.192/26")

    @property
    def kubernetes_service_ip(self) -> str:
        return str(self.service_cidr.network_address + 1)

    @property
    def dns_service_ip(self) -> str:
        return str(self.service_cidr.network_address + 10)

    @property
    def loopback(self) -> str:
        """Private address for ports nothing outside the host needs (etcd, component ports)."""
        return f"127.18.{self._third_octet}.1"

    @property
    def unreachable_metric(self) -> int:
        """Each cluster owns its own `unreachable 198.18.0.0/15` route, told apart by metric."""
        return 4180 + self.slot

    @property
    def apiserver_url(self) -> str:
        return f"https://{self.bridge_address}:6443"

    @property
    def etcd_client_url(self) -> str:
        return f"http://{self.loopback}:2379"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{self.loopback}:2380"

    def node_address(self, index: int) -> str:
        if not 0 <= index < NODE_LIMIT:
            raise ValueError(f"node index must be in 0..{NODE_LIMIT - 1}, got {index}")
        return f"198.18.{self._third_octet}.{10 + index}"

    def node_pod_cidr(self, index: int) -> str:
        """Pod CIDRs are fixed per node index, so routes can be laid before any node registers."""
        self.node_address(index)  # validates the index
        return f"198.18.{self._third_octet + 8 + index}.0/24"

    def node_name(self, index: int) -> str:
        return f"{self.name}-node{index}"

    def netns(self, index: int) -> str:
        return f"rcl{self.slot}-n{index}"

    def node_veth(self, index: int) -> str:
        """Host end of the node's veth pair, attached to the bridge."""
        return f"rcl{self.slot}n{index}"
