"""The control plane of a local cluster: etcd (embedded etcd server, its own process), kube-apiserver,
kube-controller-manager and kube-scheduler. The argv builders are pure; `start` runs them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recluster.local.layout import CLUSTER_DOMAIN, Layout
from recluster.local.pki import CertificateAuthority, CertPair, service_account_keys

COMPONENT_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class ControlPlanePaths:
    """Files of one control plane inside the cluster's state directory."""

    state: Path

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def kubeconfig(self, user: str) -> Path:
        return self.state / "kubeconfig" / f"{user}.yaml"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfig("admin")


@dataclass(frozen=True)
class Credentials:
    ca: CertPair
    apiserver: CertPair
    apiserver_kubelet_client: CertPair
    service_account: CertPair
    admin: CertPair
    controller_manager: CertPair
    scheduler: CertPair


def issue_credentials(layout: Layout, paths: ControlPlanePaths) -> Credentials:
    ca = CertificateAuthority(paths.pki)
    names = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
        "localhost",
    ]
    apiserver = ca.issue(
        paths.pki,
        "apiserver",
        common_name="kube-apiserver",
        dns_names=names,
        ip_addresses=[layout.bridge_address, layout.kubernetes_service_ip, "127.0.0.1"],
        server=True,
    )
    return Credentials(
        ca=ca.pair,
        apiserver=apiserver,
        apiserver_kubelet_client=ca.issue(
            paths.pki,
            "apiserver-kubelet-client",
            common_name="kube-apiserver-kubelet-client",
            organizations=["system:masters"],
            client=True,
        ),
        service_account=service_account_keys(paths.pki),
        admin=ca.issue(
            paths.pki, "admin", common_name="recluster-admin", organizations=["system:masters"], client=True
        ),
        controller_manager=ca.issue(
            paths.pki, "controller-manager", common_name="system:kube-controller-manager", client=True
        ),
        scheduler=ca.issue(paths.pki, "scheduler", common_name="system:kube-scheduler", client=True),
    )


def etcd_args(layout: Layout, paths: ControlPlanePaths, *, fsync: bool = True) -> list[str]:
    args = [
        "etcd",
        f"--name={layout.name}",
        f"--data-dir={paths.etcd_data}",
        f"--listen-client-urls={layout.etcd_client_url}",
        f"--advertise-client-urls={layout.etcd_client_url}",
        f"--listen-peer-urls={layout.etcd_peer_url}",
        f"--initial-advertise-peer-urls={layout.etcd_peer_url}",
        f"--initial-cluster={layout.name}={layout.etcd_peer_url}",
        "--log-level=warn",
        "--quota-backend-bytes=2147483648",
    ]
    if not fsync:
        # test clusters are thrown away; skipping fsync makes etcd several times faster on slow disks
        args.append("--unsafe-no-fsync")
    return args


def apiserver_args(layout: Layout, paths: ControlPlanePaths, creds: Credentials) -> list[str]:
    return [
        "kube-apiserver",
        f"--etcd-servers={layout.etcd_client_url}",
        f"--bind-address={layout.bridge_address}",
        f"--advertise-address={layout.bridge_address}",
        "--secure-port=6443",
        f"--tls-cert-file={creds.apiserver.cert}",
        f"--tls-private-key-file={creds.apiserver.key}",
        f"--client-ca-file={creds.ca.cert}",
        f"--kubelet-client-certificate={creds.apiserver_kubelet_client.cert}",
        f"--kubelet-client-key={creds.apiserver_kubelet_client.key}",
        f"--kubelet-certificate-authority={creds.ca.cert}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        f"--service-account-key-file={creds.service_account.cert}",
        f"--service-account-signing-key-file={creds.service_account.key}",
        f"--service-cluster-ip-range={layout.service_cidr}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--profiling=false",
        "--storage-backend=etcd3",
        "--event-ttl=1h",
    ]


def controller_manager_args(layout: Layout, paths: ControlPlanePaths, creds: Credentials) -> list[str]:
    kubeconfig = paths.kubeconfig("controller-manager")
    return [
        "kube-controller-manager",
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={layout.loopback}",
        "--secure-port=10257",
        f"--cert-dir={paths.pki / 'controller-manager-serving'}",
        "--leader-elect=false",
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--root-ca-file={creds.ca.cert}",
        f"--service-account-private-key-file={creds.service_account.key}",
        f"--cluster-signing-cert-file={creds.ca.cert}",
        f"--cluster-signing-key-file={creds.ca.key}",
        # pod CIDRs are fixed per node (layout.node_pod_cidr) and set when the Node is created
        "--allocate-node-cidrs=false",
        f"--cluster-cidr={layout.pod_cidr}",
        f"--service-cluster-ip-range={layout.service_cidr}",
        f"--cluster-name={layout.name}",
        # a lost local node is noticed in 20 s rather than 50 s, so failure tests stay short
        "--node-monitor-grace-period=20s",
        "--profiling=false",
    ]


def scheduler_args(layout: Layout, paths: ControlPlanePaths) -> list[str]:
    kubeconfig = paths.kubeconfig("scheduler")
    return [
        "kube-scheduler",
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={layout.loopback}",
        "--secure-port=10259",
        f"--cert-dir={paths.pki / 'scheduler-serving'}",
        "--leader-elect=false",
        "--profiling=false",
    ]
