"""kube-proxy of one local node (iptables mode, in the node's network namespace): config and argv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recluster.local.layout import Layout
from recluster.local.serviceroute import HEALTH_PORT


def kube_proxy_config(layout: Layout, index: int, *, kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        # iptables (nft backend of Debian's iptables) works on this kernel inside a network namespace
        "mode": "iptables",
        "clusterCIDR": str(layout.pod_cidr),
        # traffic from outside the pod range (the host, the nodes) to a Service is masqueraded, so
        # replies come back through the node that translated it
        "detectLocalMode": "ClusterCIDR",
        "hostnameOverride": layout.node_name(index),
        "bindAddress": layout.node_address(index),
        # on the node's address: the host health-checks it to choose the node its Service route uses,
        # as a cloud load balancer does (`serviceroute`)
        "healthzBindAddress": f"{layout.node_address(index)}:{HEALTH_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{layout.node_address(index)}/32"],
        # conntrack sysctls are the machine's, not the namespace's: leave them alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        # 0 would mean the 1 s default; a failover must reach new connections well within a second
        "iptables": {"masqueradeAll": False, "syncPeriod": "30s", "minSyncPeriod": "100ms"},
        "logging": {"format": "text"},
    }


def kube_proxy_args(config: Path) -> list[str]:
    return ["kube-proxy", f"--config={config}", "--v=1"]
