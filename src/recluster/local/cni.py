"""CNI configuration of a node's pods: Debian's bridge plugin with host-local IPAM on the node's
pod CIDR. Pod traffic is routed, never NATed: the host routes each node's pod CIDR to that node."""

from __future__ import annotations

import ipaddress
import json


def pod_network_conflist(pod_cidr: str, *, ipam_dir: str, name: str = "recluster") -> str:
    network = ipaddress.IPv4Network(pod_cidr)
    gateway = str(network.network_address + 1)
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        # IP reservations per node: the machine-wide default dir is shared by all nodes
                        "dataDir": ipam_dir,
                        "ranges": [[{"subnet": str(network), "gateway": gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )
