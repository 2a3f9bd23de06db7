"""The nodes of a local cluster: each one a network namespace on the cluster's bridge running a real
kubelet and its own containerd (runc, Debian's CNI plugins), like a kind node without Docker.

A node's processes are recorded (pid files) and its containers live in a cgroup tree of its own
(`/<netns>` in every hierarchy), so `stop` kills exactly the node's processes, as when a machine is
lost, and `down` removes exactly what the node created: its namespace, veth, routes, cgroups and
mounts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from recluster.local import containerd, processes
from recluster.local.cni import pod_network_conflist
from recluster.local.kubeconfig import kubeconfig, write_kubeconfig
from recluster.local.kubelet import cgroup_name, kubelet_args, kubelet_config
from recluster.local.kubeproxy import kube_proxy_args, kube_proxy_config
from recluster.local.layout import Layout
from recluster.local.pause import PAUSE_IMAGE as PAUSE_IMAGE_NAME
from recluster.local.pki import CertificateAuthority
from recluster.local.run import CommandError, run

CGROUP_ROOT = Path("/sys/fs/cgroup")
RUNTIME_LINKS = Path("/run/recluster")


@dataclass(frozen=True)
class LocalNode:
    layout: Layout
    state_dir: Path
    index: int

    @property
    def name(self) -> str:
        return self.layout.node_name(self.index)

    @property
    def netns(self) -> str:
        return self.layout.netns(self.index)

    @property
    def address(self) -> str:
        return self.layout.node_address(self.index)

    @property
    def pod_cidr(self) -> str:
        return self.layout.node_pod_cidr(self.index)

    @property
    def home(self) -> Path:
        return self.state_dir / "nodes" / f"n{self.index}"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def short_home(self) -> Path:
        """The node's directory through a short link. Unix socket paths are limited to 107 bytes and a
        state directory can be deep (a test's tmp_path), so containerd and the kubelet, which put
        sockets in their directories, are given paths through this link."""
        return RUNTIME_LINKS / self.netns

    @property
    def containerd_home(self) -> Path:
        return self.short_home / "containerd"

    def link_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        link = self.short_home
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and Path(os.readlink(link)) == self.home:
            return
        if link.is_symlink():  # left by an earlier cluster in this slot
            link.unlink()
        link.symlink_to(self.home)

    def unlink_home(self) -> None:
        link = self.short_home
        if link.is_symlink() and Path(os.readlink(link)) == self.home:
            link.unlink()

    @property
    def runtime_socket(self) -> Path:
        return self.containerd_home / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.home / "cni" / "net.d"

    # ---- network ----------------------------------------------------------------------------------

    def create_network(self, peers: list[LocalNode]) -> None:
        """Namespace, veth to the bridge, address, and routes to every peer's pod CIDR (idempotent).
        Pod traffic is routed node to node on the bridge: the host forwards nothing."""
        ns, veth = self.netns, self.layout.node_veth(self.index)
        if not Path(f"/run/netns/{ns}").exists():
            run(["ip", "netns", "add", ns])
        if run(["ip", "link", "show", "dev", veth], check=False).returncode != 0:
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", self.layout.bridge, "up"])
        inside = ["ip", "netns", "exec", ns]
        addrs = run([*inside, "ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
        if f"{self.address}/24" not in addrs:
            run([*inside, "ip", "addr", "add", f"{self.address}/24", "dev", "eth0"])
        run([*inside, "ip", "link", "set", "lo", "up"])
        run([*inside, "ip", "link", "set", "eth0", "up"])
        run([*inside, "ip", "route", "replace", "default", "via", self.layout.bridge_address])
        # forwarding between the node's pods (cni0) and eth0, inside this namespace only
        run([*inside, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for peer in peers:
            if peer.index != self.index:
                run([*inside, "ip", "route", "replace", peer.pod_cidr, "via", peer.address])
        # the host reaches the node's pods through the node (an originated packet: no forwarding)
        run(["ip", "route", "replace", self.pod_cidr, "via", self.address, "dev", self.layout.bridge])

    def remove_network(self) -> None:
        run(["ip", "route", "del", self.pod_cidr, "via", self.address], check=False)
        run(["ip", "link", "del", self.layout.node_veth(self.index)], check=False)
        if Path(f"/run/netns/{self.netns}").exists():
            run(["ip", "netns", "del", self.netns])

    def isolate(self) -> None:
        """Cut the node off the bridge: from the other nodes, the apiserver and the host."""
        run(["ip", "link", "set", self.layout.node_veth(self.index), "down"])

    def heal(self) -> None:
        run(["ip", "link", "set", self.layout.node_veth(self.index), "up"])

    def isolated(self) -> bool:
        out = run(["ip", "-o", "link", "show", "dev", self.layout.node_veth(self.index)], check=False).stdout
        return "state DOWN" in out or ",UP" not in out.split(">")[0]

    # ---- configuration ----------------------------------------------------------------------------

    def write_config(self, ca: CertificateAuthority, server: str) -> tuple[Path, Path]:
        """Certificates, kubeconfig, kubelet config, CNI config and resolv.conf of the node."""
        pki = self.home / "pki"
        client = ca.issue(
            pki,
            "kubelet-client",
            common_name=f"system:node:{self.name}",
            organizations=["system:nodes"],
            client=True,
        )
        serving = ca.issue(
            pki,
            "kubelet-serving",
            common_name=self.name,
            dns_names=[self.name],
            ip_addresses=[self.address],
            server=True,
        )
        node_kubeconfig = write_kubeconfig(
            self.home / "kubeconfig.yaml",
            kubeconfig(server, ca.pair.cert, f"system:node:{self.name}", client),
        )
        proxy_client = ca.issue(pki, "kube-proxy-client", common_name="system:kube-proxy", client=True)
        proxy_kubeconfig = write_kubeconfig(
            self.home / "kube-proxy-kubeconfig.yaml",
            kubeconfig(server, ca.pair.cert, "system:kube-proxy", proxy_client),
        )
        (self.home / "kube-proxy-config.yaml").write_text(
            yaml.safe_dump(kube_proxy_config(self.layout, self.index, kubeconfig=proxy_kubeconfig))
        )
        (self.home / "resolv.conf").write_text("# no upstream resolvers: nothing leaves the machine\n")
        config = self.home / "kubelet-config.yaml"
        config.write_text(
            yaml.safe_dump(
                kubelet_config(
                    self.layout,
                    self.index,
                    home=self.home,
                    ca_cert=ca.pair.cert,
                    serving_cert=serving.cert,
                    serving_key=serving.key,
                    runtime_socket=self.runtime_socket,
                )
            )
        )
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (self.cni_conf_dir / "10-recluster.conflist").write_text(
            pod_network_conflist(self.pod_cidr, ipam_dir=str(self.home / "cni" / "ipam"))
        )
        return config, node_kubeconfig

    def cgroup_dirs(self) -> list[Path]:
        name = cgroup_name(self.layout, self.index)
        return [
            d / name for d in sorted(CGROUP_ROOT.iterdir()) if d.is_dir() and (d / "cgroup.procs").exists()
        ]

    def create_cgroups(self) -> None:
        for path in self.cgroup_dirs():
            path.mkdir(exist_ok=True)
            if path.parent.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    if not (path / knob).read_text().strip():
                        (path / knob).write_text((path.parent / knob).read_text())

    def cgroup_pids(self) -> set[int]:
        pids: set[int] = set()
        for base in self.cgroup_dirs():
            # cgroups come and go while we walk (containers are dying): skip what vanished
            for directory, _, files in os.walk(base, onerror=lambda _: None):
                if "cgroup.procs" in files:
                    with contextlib.suppress(OSError, ValueError):
                        pids.update(int(p) for p in (Path(directory) / "cgroup.procs").read_text().split())
        return pids

    def remove_cgroups(self) -> None:
        for base in self.cgroup_dirs():
            for directory, _, _ in sorted(os.walk(base, onerror=lambda _: None), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    Path(directory).rmdir()

    # ---- processes ---------------------------------------------------------------------------------

    def start(self, kube: Path, ca: CertificateAuthority, server: str, images: list[Path]) -> None:
        """Start containerd (importing the cluster's images) and the kubelet, if not running."""
        config, node_kubeconfig = self.write_config(ca, server)
        self.create_cgroups()
        self.link_home()
        if not _alive_containerd(self.containerd_home):
            containerd.start_containerd(
                self.containerd_home,
                cri=True,
                netns=self.netns,
                snapshotter="overlayfs",
                cni_conf_dir=self.cni_conf_dir,
                pause_image=PAUSE_IMAGE_NAME,
            )
        self.import_images(images)  # only the missing ones
        kubelet = kubelet_args(
            self.layout, self.index, home=self.short_home, config=config, kubeconfig=node_kubeconfig
        )
        self._ensure_process(self.kubelet_process, [str(kube), *kubelet])
        proxy = kube_proxy_args(self.home / "kube-proxy-config.yaml")
        self._ensure_process(self.kube_proxy_process, [str(kube), *proxy])

    def _ensure_process(self, name: str, argv: list[str]) -> None:
        record = processes.read(name, self.run_dir)
        if record is None or not record.alive():
            processes.start(name, argv, run_dir=self.run_dir, log_dir=self.log_dir, netns=self.netns)

    @property
    def kubelet_process(self) -> str:
        return f"kubelet-n{self.index}"

    @property
    def kube_proxy_process(self) -> str:
        return f"kube-proxy-n{self.index}"

    def import_images(self, images: list[Path]) -> None:
        """Import the archives this containerd lacks, or holds an older build of: the project image
        is rebuilt under the same tag when the source changes, and a node that kept the old one
        would run new pods on old code. What was imported is recorded in the node's home."""
        from recluster.local.images import archive_identity, archive_tags, import_image

        present = set(
            run(
                ["ctr", "--address", str(self.runtime_socket), "-n", "k8s.io", "images", "list", "-q"],
                timeout=60,
            ).stdout.split()
        )
        record_path = self.home / "imported-images.json"
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {}
        for archive in images:
            identity = archive_identity(archive)
            tags = archive_tags(archive)
            if set(tags) <= present and all(record.get(tag) == identity for tag in tags):
                continue
            import_image(archive, self.runtime_socket, snapshotter="overlayfs")
            record.update(dict.fromkeys(tags, identity))
            record_path.write_text(json.dumps(record, indent=1, sort_keys=True))

    def running(self) -> bool:
        kubelet = processes.read(self.kubelet_process, self.run_dir)
        return kubelet is not None and kubelet.alive()

    def stop(self) -> None:
        """Kill the node as a lost machine dies: kubelet, every container, containerd and its shims."""
        record = processes.read(self.kubelet_process, self.run_dir)
        if record is not None and record.alive():
            for pid in processes.session_members(record):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        processes.stop(self.kubelet_process, self.run_dir, timeout=1)
        processes.stop(self.kube_proxy_process, self.run_dir, timeout=1)
        deadline = time.monotonic() + 20
        while (pids := self.cgroup_pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        self.link_home()
        pod_netns = self.pod_network_namespaces()
        containerd.stop_containerd(self.containerd_home, timeout=2)
        containerd.unmount_under(self.home)
        ours = self.containerd_home / "state" / containerd.CRI_NETNS
        for path in pod_netns:
            if path.parent == ours:  # unmounted with our state above: only the empty file is left
                path.unlink(missing_ok=True)
            else:
                run(["ip", "netns", "del", path.name], check=False)

    def pod_network_namespaces(self) -> list[Path]:
        """Network namespaces of this node's pod sandboxes: those containerd mounts under our state
        (`netns_mounts_under_state_dir`), and any an older configuration put in /var/run/netns, read
        from the task bundles containerd keeps in our state (they outlive a killed containerd)."""
        state = self.containerd_home / "state"
        found: set[Path] = set((state / containerd.CRI_NETNS).glob("*"))
        for config in state.glob("io.containerd.runtime.v2.task/*/*/config.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                for namespace in json.loads(config.read_text())["linux"]["namespaces"]:
                    path = Path(namespace.get("path") or "/")
                    if namespace["type"] == "network" and path.parent in (
                        Path("/var/run/netns"),
                        Path("/run/netns"),
                        state / containerd.CRI_NETNS,
                    ):
                        found.add(path)
        return sorted(p for p in found if p.exists())

    def destroy(self) -> None:
        self.stop()
        self.unlink_home()
        self.remove_cgroups()
        self.remove_network()


def _alive_containerd(home: Path) -> bool:
    try:
        pid = int((home / "containerd.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "containerd"
    except OSError:
        return False


def register_node(api: httpx.Client, node: LocalNode) -> None:
    """Create the Node with its fixed pod CIDR before its kubelet registers (the kubelet adopts it)."""
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
    }
    response = api.post("/api/v1/nodes", json=body)
    if response.status_code not in (201, 409):
        raise CommandError(f"creating Node {node.name} failed: {response.status_code} {response.text[:300]}")


def node_ready(api: httpx.Client, name: str) -> bool:
    response = api.get(f"/api/v1/nodes/{name}")
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_names(api: httpx.Client) -> list[str]:
    response = api.get("/api/v1/nodes")
    response.raise_for_status()
    return [item["metadata"]["name"] for item in response.json()["items"]]


def describe(api: httpx.Client, name: str) -> str:
    response = api.get(f"/api/v1/nodes/{name}")
    if response.status_code != 200:
        return "not registered"
    conditions = {c["type"]: c for c in response.json().get("status", {}).get("conditions") or []}
    ready = conditions.get("Ready", {})
    return f"Ready={ready.get('status', '?')} ({ready.get('reason', '')}: {ready.get('message', '')})"


def dump(node: LocalNode) -> str:
    return json.dumps(
        {"name": node.name, "address": node.address, "pod_cidr": node.pod_cidr, "netns": node.netns}
    )
