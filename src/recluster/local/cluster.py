"""One local cluster: its state directory, its layout, and `up` / `down` / `status`.

State lives in one directory (default under the user's cache directory): certificates, etcd's data,
kubeconfigs, logs and pid files. `up` after `down` finds the same objects; `down` stops every
process recorded in the state directory and removes the interfaces and routes it created."""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
from rich.console import Console

from recluster.local import controlplane, network, nodes, processes
from recluster.local.controlplane import ControlPlanePaths, Credentials
from recluster.local.kubebuild import ensure_kube
from recluster.local.kubeconfig import kubeconfig, write_kubeconfig
from recluster.local.layout import NODE_LIMIT, SLOTS, Layout
from recluster.local.nodes import LocalNode
from recluster.local.paths import cache_dir, repo_dir
from recluster.local.pki import CertificateAuthority
from recluster.local.run import CommandError, run
from recluster.local.serviceroute import ServiceRoute, choose_gateway

DEFAULT_NAME = "recluster"


def default_state_dir(name: str = DEFAULT_NAME) -> Path:
    return cache_dir() / "clusters" / name


class WaitTimeout(CommandError):
    pass


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
    """Poll `check` until it is true; on timeout say what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class LocalCluster:
    state_dir: Path
    layout: Layout
    fsync: bool = True
    node_count: int = 0

    @classmethod
    def load(cls, state_dir: Path) -> LocalCluster | None:
        try:
            data = json.loads((state_dir / "cluster.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            state_dir, Layout(data["name"], data["slot"]), data.get("fsync", True), data.get("nodes", 0)
        )

    @classmethod
    def create(cls, state_dir: Path, name: str, slot: int | None = None, fsync: bool = True) -> LocalCluster:
        """Load the cluster kept in `state_dir`, or claim a slot for a new one."""
        existing = cls.load(state_dir)
        if existing is not None:
            return existing
        state_dir.mkdir(parents=True, exist_ok=True)
        candidates = [slot] if slot is not None else list(range(SLOTS))
        for candidate in candidates:
            layout = Layout(name, candidate)
            if network.claim_bridge(layout, state_dir):
                cluster = cls(state_dir, layout, fsync)
                cluster.save()
                return cluster
        raise CommandError(
            f"no free local-cluster slot among {candidates} (bridges rcl0..rcl{SLOTS - 1} in use)"
        )

    def save(self) -> None:
        record = {
            "name": self.layout.name,
            "slot": self.layout.slot,
            "fsync": self.fsync,
            "nodes": self.node_count,
        }
        (self.state_dir / "cluster.json").write_text(json.dumps(record))

    @property
    def nodes(self) -> list[LocalNode]:
        return [LocalNode(self.layout, self.state_dir, i) for i in range(self.node_count)]

    def node(self, name: str) -> LocalNode:
        for node in self.nodes:
            if name in (node.name, str(node.index), f"n{node.index}"):
                return node
        raise CommandError(f"no node {name!r}; nodes: {', '.join(n.name for n in self.nodes) or 'none'}")

    def api(self) -> httpx.Client:
        """An admin HTTP client for the apiserver (for the few calls made outside kubectl)."""
        return httpx.Client(base_url=self.layout.apiserver_url, verify=self._ssl_context(), timeout=30)

    @property
    def paths(self) -> ControlPlanePaths:
        return ControlPlanePaths(self.state_dir)

    @property
    def kubeconfig_path(self) -> Path:
        return self.paths.admin_kubeconfig

    def credentials(self) -> Credentials:
        return controlplane.issue_credentials(self.layout, self.paths)

    def kube_dir(self, console: Console | None = None) -> Path:
        return ensure_kube(console)

    def up(self, console: Console | None = None, timeout: float = 120, nodes: int | None = None) -> None:
        """Start the control plane and `nodes` nodes (default: as many as last time)."""
        console = console or Console(stderr=True)
        if nodes is not None:
            if not 0 <= nodes <= NODE_LIMIT:
                raise CommandError(f"--nodes must be between 0 and {NODE_LIMIT}, got {nodes}")
            self._remove_nodes_beyond(nodes, console)
            self.node_count = nodes
            self.save()
        self._up_control_plane(console, timeout)
        if self.node_count:
            self._up_nodes(console, timeout)

    def _up_control_plane(self, console: Console, timeout: float) -> None:
        kube = self.kube_dir(console) / "kube"
        console.print(
            f"[bold]Network[/]: bridge {self.layout.bridge} {self.layout.bridge_cidr}, "
            f"services {self.layout.service_cidr}"
        )
        network.setup(self.layout, self.state_dir)
        creds = self.credentials()
        self._write_kubeconfigs(creds)
        paths = self.paths
        argvs = {
            "etcd": controlplane.etcd_args(self.layout, paths, fsync=self.fsync),
            "kube-apiserver": controlplane.apiserver_args(self.layout, paths, creds),
            "kube-controller-manager": controlplane.controller_manager_args(self.layout, paths, creds),
            "kube-scheduler": controlplane.scheduler_args(self.layout, paths),
        }
        for name in controlplane.COMPONENT_ORDER:
            record = processes.read(name, paths.run)
            if record is not None and record.alive():
                console.print(f"  {name}: already running (pid {record.pid})")
                continue
            record = processes.start(name, [str(kube), *argvs[name]], run_dir=paths.run, log_dir=paths.logs)
            console.print(f"  {name}: started (pid {record.pid}, log {paths.logs / (name + '.log')})")
            if name == "etcd":
                wait_for("etcd to accept clients", lambda: self._etcd_healthy(), timeout)
            if name == "kube-apiserver":
                console.print("  waiting for the apiserver's /readyz ...")
                wait_for(
                    f"kube-apiserver /readyz at {self.layout.apiserver_url} "
                    f"(log: {paths.logs / 'kube-apiserver.log'})",
                    self.ready,
                    timeout,
                )
        console.print(f"[green]Control plane ready[/] at {self.layout.apiserver_url}")

    def images(self, console: Console) -> list[Path]:
        """The image archives every node holds: the pod sandbox, CoreDNS and the project image."""
        from recluster.local.coredns import ensure_coredns_image
        from recluster.local.images import ensure_project_image
        from recluster.local.pause import ensure_pause_image

        return [
            ensure_pause_image(console),
            ensure_coredns_image(console),
            ensure_project_image(Path(repo_dir()), cache_dir(), console=console),
        ]

    def load_image(self, archive: Path) -> None:
        """Import one more image archive into every running node's containerd (side by side)."""
        running = [n for n in self.nodes if n.running()]
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            for done in [pool.submit(n.import_images, [archive]) for n in running]:
                done.result()

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        kubectl = self.kube_dir() / "kubectl"
        argv = [str(kubectl), "--kubeconfig", str(self.kubeconfig_path), *args]
        return run(argv, input=input, timeout=timeout).stdout

    def resolve(self, name: str, timeout: float = 3) -> list[str]:
        """The IPv4 addresses of a cluster name, asked of kube-dns from the host."""
        from recluster.local import coredns

        return coredns.resolve(self.layout, name, timeout)

    def _up_addons(self, console: Console) -> None:
        record = processes.read("addons", self.paths.run)
        if record is None or not record.alive():
            argv = [sys.executable, "-m", "recluster.local.addons", "--state-dir", str(self.state_dir)]
            processes.start("addons", argv, run_dir=self.paths.run, log_dir=self.paths.logs)
            console.print(
                "  add-ons: local volume provisioner (StorageClass standard), LoadBalancer addresses"
            )

    def route_services(self) -> str | None:
        """Route the Service range and the load-balancer pool from the host through a node that runs
        and is connected (its kube-proxy translates): the current one while it is, else the first.
        The add-ons process keeps this true when a node fails by other means (`serviceroute`)."""
        route = ServiceRoute(self.layout)
        usable = {n.address: n.name for n in self.nodes if n.running() and not n.isolated()}
        current = route.current()
        chosen = choose_gateway(current, [n.address for n in self.nodes], usable.__contains__)
        if chosen is None:
            return None
        if chosen != current:
            route.apply(chosen)
        return usable[chosen]

    def _up_nodes(self, console: Console, timeout: float) -> None:
        kube = self.kube_dir(console) / "kube"
        images = self.images(console)
        ca = CertificateAuthority(self.paths.pki)
        with self.api() as api:
            for node in self.nodes:
                node.create_network(self.nodes)
                nodes.register_node(api, node)
                if node.running():
                    console.print(f"  {node.name}: already running")
                else:
                    console.print(
                        f"  {node.name}: starting containerd, kubelet and kube-proxy at {node.address} "
                        f"(pods {node.pod_cidr})"
                    )
            # nodes start side by side: most of the time goes to importing images into each containerd
            with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
                starts = [
                    pool.submit(n.start, kube, ca, self.layout.apiserver_url, images) for n in self.nodes
                ]
                for started in starts:
                    started.result()  # starts only what is missing; re-raises a node's failure
            for node in self.nodes:
                log = self.paths.logs / f"{node.kubelet_process}.log"
                name = node.name
                wait_for(
                    f"node {name} to report Ready (log: {log})", partial(nodes.node_ready, api, name), timeout
                )
                console.print(f"  {node.name}: Ready")
        self._up_addons(console)
        self.route_services()
        from recluster.local import coredns

        coredns.deploy(self.layout, self.kubectl, console, timeout)

    def _remove_nodes_beyond(self, count: int, console: Console) -> None:
        for node in self.nodes[count:]:
            node.destroy()
            console.print(f"  {node.name}: removed")
            if self.ready():
                with self.api() as api:
                    api.delete(f"/api/v1/nodes/{node.name}")

    def stop_node(self, name: str) -> LocalNode:
        node = self.node(name)
        node.stop()
        self.route_services()
        return node

    def isolate_node(self, name: str) -> LocalNode:
        node = self.node(name)
        node.isolate()
        self.route_services()
        return node

    def heal_node(self, name: str) -> LocalNode:
        node = self.node(name)
        node.heal()
        self.route_services()
        return node

    def start_node(
        self,
        name: str,
        console: Console | None = None,
        timeout: float = 120,
        images: list[Path] | None = None,
    ) -> LocalNode:
        """Start a stopped node again. `images`: the archives `up` used (`images()`), so a restart
        in the middle of a run imports nothing new even when the source tree changed since."""
        console = console or Console(stderr=True)
        node = self.node(name)
        node.create_network(self.nodes)
        node.start(
            self.kube_dir(console) / "kube",
            CertificateAuthority(self.paths.pki),
            self.layout.apiserver_url,
            images if images is not None else self.images(console),
        )
        with self.api() as api:
            wait_for(f"node {node.name} to report Ready", lambda: nodes.node_ready(api, node.name), timeout)
        self.route_services()
        return node

    def stop_control_plane_component(self, name: str) -> bool:
        """Stop one recorded control-plane process (etcd, kube-apiserver, ...), as a fault to inject;
        `start_control_plane` brings it back. True when it was running."""
        if name not in controlplane.COMPONENT_ORDER:
            raise CommandError(f"no control-plane component {name!r}; one of {controlplane.COMPONENT_ORDER}")
        return processes.stop(name, self.paths.run)

    def start_control_plane(self, console: Console | None = None, timeout: float = 120) -> None:
        """Start the control-plane components that are not running, as `up` does (the running ones
        are left alone), and wait until the apiserver is ready."""
        self._up_control_plane(console or Console(stderr=True), timeout)

    def _write_kubeconfigs(self, creds: Credentials) -> None:
        server = self.layout.apiserver_url
        for user, pair in (
            ("admin", creds.admin),
            ("controller-manager", creds.controller_manager),
            ("scheduler", creds.scheduler),
        ):
            write_kubeconfig(self.paths.kubeconfig(user), kubeconfig(server, creds.ca.cert, user, pair))

    def _ssl_context(self) -> ssl.SSLContext:
        creds = self.paths.pki
        ctx = ssl.create_default_context(cafile=str(creds / "ca.crt"))
        ctx.load_cert_chain(str(creds / "admin.crt"), str(creds / "admin.key"))
        return ctx

    def _etcd_healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.layout.etcd_client_url}/health", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and '"health":"true"' in response.text.replace(" ", "")

    def ready(self) -> bool:
        try:
            response = httpx.get(f"{self.layout.apiserver_url}/readyz", verify=self._ssl_context(), timeout=3)
        except (httpx.HTTPError, OSError):
            return False
        return response.status_code == 200 and response.text.strip() == "ok"

    def down(self, console: Console | None = None) -> None:
        """Stop and remove everything; one part failing does not leave the others behind."""
        console = console or Console(stderr=True)
        failures: list[str] = []

        def attempt(what: str, step: Callable[[], object]) -> None:
            try:
                step()
            except Exception as exc:  # reported below, after the other parts are down
                failures.append(f"{what}: {exc}")

        for node in self.nodes:
            attempt(node.name, node.destroy)
            console.print(f"  {node.name}: stopped and removed from the machine")
        for name in reversed(controlplane.COMPONENT_ORDER):
            if processes.stop(name, self.paths.run):
                console.print(f"  {name}: stopped")
        for record in processes.running(self.paths.run):  # anything else this cluster recorded
            processes.stop(record.name, self.paths.run)
            console.print(f"  {record.name}: stopped")
        attempt("network", lambda: network.teardown(self.layout, self.state_dir))
        if failures:
            raise CommandError("stopping the local cluster left work undone:\n" + "\n".join(failures))
        console.print(f"[green]Stopped[/] local cluster {self.layout.name}; state kept in {self.state_dir}")

    def status(self) -> dict[str, object]:
        running = {r.name: r.pid for r in processes.running(self.paths.run)}
        return {
            "name": self.layout.name,
            "state_dir": str(self.state_dir),
            "apiserver": self.layout.apiserver_url,
            "ready": self.ready() if running else False,
            "nodes": [
                {
                    "name": n.name,
                    "address": n.address,
                    "pod_cidr": n.pod_cidr,
                    "running": n.running(),
                    "isolated": n.isolated() if n.running() else None,
                }
                for n in self.nodes
            ],
            "kubeconfig": str(self.kubeconfig_path),
            "processes": {
                name: {"pid": running.get(name), "log": str(self.paths.logs / f"{name}.log")}
                for name in sorted(set(controlplane.COMPONENT_ORDER) | set(running))
            },
        }
