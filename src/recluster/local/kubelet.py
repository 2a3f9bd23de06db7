"""The kubelet of one local node: its configuration file and command line (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recluster.local.layout import CLUSTER_DOMAIN, Layout


def kubelet_config(
    layout: Layout,
    index: int,
    *,
    home: Path,
    ca_cert: Path,
    serving_cert: Path,
    serving_key: Path,
    runtime_socket: Path,
) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_address(index),
        "port": 10250,
        "readOnlyPort": 0,
        # the node's own loopback: every kubelet sits in its own network namespace
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        # cgroupfs under a root of the node's own, so several kubelets share one machine's cgroups
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup_name(layout, index)}",
        "cgroupsPerQOS": True,
        # this machine's cgroups are v1 with a v2 hierarchy beside it
        "failCgroupV1": False,
        "clusterDNS": [layout.dns_service_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        # no upstream resolvers: names outside the cluster are never forwarded off the machine
        "resolvConf": str(home / "resolv.conf"),
        # per node: every kubelet removes the log directories of pods it does not know
        "podLogsDir": str(home / "pod-logs"),
        "failSwapOn": False,
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        # images cannot be pulled again here (no registry): never garbage-collect them
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "nodeStatusUpdateFrequency": "5s",
        "nodeStatusReportFrequency": "30s",
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "maxPods": 110,
        "podPidsLimit": 4096,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "staticPodPath": "",
        "enableServer": True,
        "logging": {"format": "text"},
    }


def cgroup_name(layout: Layout, index: int) -> str:
    return layout.netns(index)


def kubelet_args(layout: Layout, index: int, *, home: Path, config: Path, kubeconfig: Path) -> list[str]:
    return [
        "kubelet",
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={home / 'kubelet'}",
        f"--cert-dir={home / 'kubelet-pki'}",
        f"--hostname-override={layout.node_name(index)}",
        f"--node-ip={layout.node_address(index)}",
        f"--node-labels=topology.kubernetes.io/zone={zone(index)},recluster.io/local-node={index}",
        "--v=1",
    ]


def zone(index: int) -> str:
    return f"zone-{chr(ord('a') + index)}"
