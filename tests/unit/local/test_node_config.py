"""What the node builders promise: per-node isolation on one machine, nothing forwarded off it."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.local import coredns
from recluster.local.cni import pod_network_conflist
from recluster.local.kubelet import kubelet_args, kubelet_config
from recluster.local.kubeproxy import kube_proxy_config
from recluster.local.layout import NODE_LIMIT, Layout
from recluster.local.loadbalancer import ingress_ip, plan_addresses
from recluster.local.provisioner import storage_class, volume_for

pytestmark = pytest.mark.unit

LAYOUT = Layout("c", 2)


def kubelet(index: int) -> dict[str, Any]:
    home = Path(f"/state/nodes/n{index}")
    return kubelet_config(
        LAYOUT,
        index,
        home=home,
        ca_cert=Path("/ca.crt"),
        serving_cert=home / "s.crt",
        serving_key=home / "s.key",
        runtime_socket=home / "containerd.sock",
    )


def test_kubelets_on_one_machine_share_no_cgroup_root_log_dir_or_socket() -> None:
    configs = [kubelet(i) for i in range(NODE_LIMIT)]
    for key in ("cgroupRoot", "podLogsDir", "containerRuntimeEndpoint", "address"):
        assert len({c[key] for c in configs}) == NODE_LIMIT, key
    assert all(c["clusterDNS"] == [LAYOUT.dns_service_ip] for c in configs)
    assert all(c["authentication"]["anonymous"]["enabled"] is False for c in configs)
    assert all(c["authorization"]["mode"] == "Webhook" for c in configs)


def test_kubelet_registers_with_its_zone_and_address() -> None:
    args = kubelet_args(LAYOUT, 1, home=Path("/h"), config=Path("/c"), kubeconfig=Path("/k"))
    assert f"--node-ip={LAYOUT.node_address(1)}" in args
    assert any(a.startswith("--node-labels=") and "topology.kubernetes.io/zone=zone-b" in a for a in args)


def test_pod_network_is_routed_not_masqueraded_within_the_node_cidr() -> None:
    conf = json.loads(pod_network_conflist(LAYOUT.node_pod_cidr(3), ipam_dir="/ipam"))
    bridge = conf["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == LAYOUT.node_pod_cidr(3)
    assert bridge["ipam"]["dataDir"] == "/ipam"


def test_kube_proxy_syncs_fast_and_leaves_machine_sysctls_alone() -> None:
    config = kube_proxy_config(LAYOUT, 0, kubeconfig=Path("/k"))
    assert config["mode"] == "iptables"
    assert config["clusterCIDR"] == str(LAYOUT.pod_cidr)
    assert config["conntrack"]["maxPerCore"] == 0
    # 0 would be replaced by the 1 s default
    assert config["iptables"]["minSyncPeriod"] not in ("0s", "0")


def test_dns_answers_only_the_cluster_and_nxdomain_for_the_rest() -> None:
    corefile = coredns.corefile()
    assert "forward" not in corefile
    assert "rcode NXDOMAIN" in corefile.split(".:53")[1]
    service = next(o for o in coredns.manifests(LAYOUT, "img") if o["kind"] == "Service")
    assert service["spec"]["clusterIP"] == LAYOUT.dns_service_ip


def lb_service(
    namespace: str, name: str, ip: str | None = None, kind: str = "LoadBalancer"
) -> dict[str, Any]:
    status = {"loadBalancer": {"ingress": [{"ip": ip}]}} if ip else {}
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"type": kind}, "status": status}


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.text("xyz", min_size=1, max_size=4), st.booleans()),
        max_size=40,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_load_balancer_addresses_are_unique_in_the_pool_and_kept(specs: list[tuple[str, str, bool]]) -> None:
    pool = LAYOUT.lb_pool
    hosts = [str(a) for a in pool.hosts()]
    services = [lb_service(ns, name, hosts[i] if keep else None) for i, (ns, name, keep) in enumerate(specs)]
    plan = plan_addresses(services, pool)
    assigned = [ingress_ip(s) for s in services if ingress_ip(s)] + list(plan.values())
    assert len(assigned) == len(set(assigned))
    assert all(ipaddress.ip_address(a) in pool for a in assigned)
    assert set(plan) == {f"{ns}/{name}" for ns, name, keep in specs if not keep} or len(assigned) == len(
        hosts
    )


def test_cluster_ip_services_get_no_load_balancer_address() -> None:
    assert plan_addresses([lb_service("a", "x", kind="ClusterIP")], LAYOUT.lb_pool) == {}


def test_volume_is_pinned_to_the_selected_node() -> None:
    claim = {
        "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
        "spec": {"resources": {"requests": {"storage": "1Gi"}}, "accessModes": ["ReadWriteOnce"]},
    }
    volume = volume_for(claim, "c-node1", Path("/v"))
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["c-node1"]
    assert volume["spec"]["claimRef"]["uid"] == "u1"
    assert volume["spec"]["capacity"]["storage"] == "1Gi"
    assert storage_class()["allowVolumeExpansion"] is True
