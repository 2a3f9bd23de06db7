"""Cluster DNS of the local cluster: CoreDNS built from its Go module (tools/coredns), in an image
on the local Debian base, deployed in kube-system with the kubernetes plugin and the `kube-dns`
Service at the cluster's fixed DNS address. Names outside the cluster get an immediate NXDOMAIN:
nothing is forwarded off the machine."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from recluster.local.base_image import BASE_IMAGE
from recluster.local.binimage import binary_image
from recluster.local.kubebuild import module_binary
from recluster.local.layout import CLUSTER_DOMAIN, Layout
from recluster.local.paths import repo_dir
from recluster.local.run import CommandError

NAMESPACE = "kube-system"
LABELS = {"k8s-app": "kube-dns"}


def module() -> Path:
    return Path(repo_dir()) / "tools" / "coredns"


def coredns_version() -> str:
    match = re.search(r"github\.com/coredns/coredns\s+(v[\d.]+)", (module() / "go.mod").read_text())
    assert match is not None, "tools/coredns/go.mod must require github.com/coredns/coredns"
    return match.group(1)


def image_name() -> str:
    return f"localhost/recluster/coredns:{coredns_version()}"


def ensure_coredns_image(console: Console | None = None) -> Path:
    console = console or Console(stderr=True)
    binary = module_binary(module(), "github.com/coredns/coredns", "coredns", console)
    return binary_image(image_name(), binary, path="/usr/local/bin/coredns", base=BASE_IMAGE, console=console)


def corefile(domain: str = CLUSTER_DOMAIN) -> str:
    return f"""{domain}:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
        pods insecure
        ttl 5
    }}
    prometheus :9153
    cache 5
    reload
    loadbalance
}}
.:53 {{
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def manifests(layout: Layout, image: str) -> list[dict[str, Any]]:
    """The DNS add-on's objects (pure)."""
    meta = {"namespace": NAMESPACE, "labels": LABELS}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", **meta}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns", "labels": LABELS},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns", "labels": LABELS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", **meta},
            "data": {"Corefile": corefile()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", **meta},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": LABELS},
                "strategy": {"rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",
                        "affinity": {
                            "podAntiAffinity": {
                                "preferredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "weight": 100,
                                        "podAffinityTerm": {
                                            "labelSelector": {"matchLabels": LABELS},
                                            "topologyKey": "kubernetes.io/hostname",
                                        },
                                    }
                                ]
                            }
                        },
                        "tolerations": [
                            {
                                "key": "node.kubernetes.io/not-ready",
                                "operator": "Exists",
                                "effect": "NoExecute",
                                "tolerationSeconds": 10,
                            },
                            {
                                "key": "node.kubernetes.io/unreachable",
                                "operator": "Exists",
                                "effect": "NoExecute",
                                "tolerationSeconds": 10,
                            },
                        ],
                        "containers": [
                            {
                                "name": "coredns",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                    {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "40Mi"},
                                    "limits": {"memory": "170Mi"},
                                },
                                "securityContext": {
                                    "runAsNonRoot": True,
                                    "runAsUser": 65534,
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "periodSeconds": 10,
                                    "failureThreshold": 5,
                                },
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/coredns", "readOnly": True}
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", **meta, "labels": {**LABELS, "kubernetes.io/name": "CoreDNS"}},
            "spec": {
                "selector": LABELS,
                "clusterIP": layout.dns_service_ip,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        },
    ]


def deploy(layout: Layout, kubectl: Callable[..., str], console: Console, timeout: float) -> None:
    """Apply CoreDNS (its ConfigMap, Deployment and the kube-dns Service) and wait for its rollout."""
    objects = {"apiVersion": "v1", "kind": "List", "items": manifests(layout, image_name())}
    apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=recluster-local", "-f", "-"]
    kubectl(*apply, input=json.dumps(objects))
    console.print(f"  cluster DNS: CoreDNS {coredns_version()}, kube-dns at {layout.dns_service_ip}")
    rollout = ["-n", NAMESPACE, "rollout", "status", "deployment/coredns", f"--timeout={int(timeout)}s"]
    kubectl(*rollout, timeout=timeout + 10)


def resolve(layout: Layout, name: str, timeout: float = 3) -> list[str]:
    """The IPv4 addresses of a cluster name, asked of kube-dns from the host."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [layout.dns_service_ip]
    try:
        answer = resolver.resolve(name, "A", lifetime=timeout, search=False)
    except dns.resolver.NXDOMAIN as exc:
        raise CommandError(f"{name}: no such name in the cluster") from exc
    except (dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise CommandError(f"{name}: no answer from kube-dns at {layout.dns_service_ip}: {exc}") from exc
    return sorted(str(record) for record in answer)
