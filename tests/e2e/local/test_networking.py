"""Services and DNS on the local cluster: kube-proxy (iptables) in every node, CoreDNS, LoadBalancer
addresses, and the host reaching all of it without a packet leaving 198.18.0.0/15."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.local.support import IMAGE, apply, temporary_namespace

from recluster.local.cluster import LocalCluster
from recluster.local.harness import eventually, get, kubectl, ready_pods
from recluster.local.run import CommandError
from recluster.local.serviceroute import ServiceRoute

pytestmark = pytest.mark.e2e

# a one-line TCP server that answers with its pod's name, ready only while /tmp/ready exists
ECHO_SERVER = (
    "import os, socketserver\n"
    "class H(socketserver.BaseRequestHandler):\n"
    "    def handle(self): self.request.sendall(os.environ['POD_NAME'].encode())\n"
    "socketserver.ThreadingTCPServer.allow_reuse_address = True\n"
    "socketserver.ThreadingTCPServer(('0.0.0.0', 8080), H).serve_forever()\n"
)


def echo_pod(name: str, ready: bool) -> dict[str, Any]:
    start = "touch /tmp/ready; " if ready else ""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "echo"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "echo",
                    "image": IMAGE,
                    "command": ["sh", "-c", f'{start}exec /opt/recluster/bin/python -c "$SERVER"'],
                    "env": [
                        {"name": "SERVER", "value": ECHO_SERVER},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "readinessProbe": {
                        "exec": {"command": ["test", "-f", "/tmp/ready"]},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                        "successThreshold": 1,
                    },
                }
            ],
        },
    }


def ask(address: str, port: int = 8080, timeout: float = 1.0) -> str:
    with socket.create_connection((address, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        return conn.recv(256).decode()


@pytest.fixture(scope="module")
def echo(local_cluster: LocalCluster) -> Iterator[tuple[LocalCluster, str, str]]:
    """Namespace with pods echo-a (ready) and echo-b (not ready) behind Service `echo`."""
    cluster = local_cluster
    with temporary_namespace(cluster) as namespace:
        apply(
            cluster,
            namespace,
            echo_pod("echo-a", True),
            echo_pod("echo-b", False),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "echo"},
                "spec": {"selector": {"app": "echo"}, "ports": [{"port": 8080, "targetPort": 8080}]},
            },
        )
        eventually("echo-a to be Ready", lambda: ready_pods(cluster, namespace, "app=echo"))
        eventually(
            "echo-b to run",
            lambda: get(cluster, namespace, "pod", "echo-b")["status"].get("phase") == "Running",
        )
        cluster_ip = get(cluster, namespace, "service", "echo")["spec"]["clusterIP"]
        yield cluster, namespace, cluster_ip


def test_pod_reaches_a_service_by_name_and_by_cluster_ip(echo: tuple[LocalCluster, str, str]) -> None:
    cluster, namespace, cluster_ip = echo
    for target in ("echo", f"echo.{namespace}.svc.cluster.local", cluster_ip):
        # retry briefly: the kube-proxy of echo-b's node may not have seen the endpoint yet
        script = (
            "import socket, time\n"
            "for attempt in range(40):\n"
            "    try:\n"
            f"        print(socket.create_connection(({target!r}, 8080), timeout=3).recv(64).decode())\n"
            "        break\n"
            "    except OSError:\n"
            "        time.sleep(0.25)\n"
        )
        out = kubectl(
            cluster, "-n", namespace, "exec", "echo-b", "--", "/opt/recluster/bin/python", "-c", script
        )
        assert out.stdout.strip() == "echo-a", target


def test_host_resolves_and_reaches_cluster_names(echo: tuple[LocalCluster, str, str]) -> None:
    cluster, namespace, cluster_ip = echo
    assert cluster.resolve(f"echo.{namespace}.svc.cluster.local") == [cluster_ip]
    assert ask(cluster_ip) == "echo-a"
    with pytest.raises(CommandError, match="no such name"):
        cluster.resolve("example.com")  # names outside the cluster: an immediate negative answer


def test_statefulset_pod_has_a_stable_dns_name(local_cluster: LocalCluster) -> None:
    cluster = local_cluster
    with temporary_namespace(cluster) as namespace:
        apply(
            cluster,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 8080}]},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "serviceName": "db",
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": echo_pod("x", True)["spec"]},
                },
            },
        )
        pod = eventually("db-0 to be Ready", lambda: ready_pods(cluster, namespace, "app=db"))[0]
        name = f"db-0.db.{namespace}.svc.cluster.local"
        assert cluster.resolve(name) == [pod["status"]["podIP"]]
        assert ask(pod["status"]["podIP"]) == "db-0"


def test_new_connections_follow_the_ready_endpoint_within_a_second(
    echo: tuple[LocalCluster, str, str],
) -> None:
    cluster, namespace, cluster_ip = echo
    assert ask(cluster_ip) == "echo-a"
    kubectl(cluster, "-n", namespace, "exec", "echo-b", "--", "touch", "/tmp/ready")
    kubectl(cluster, "-n", namespace, "exec", "echo-a", "--", "rm", "/tmp/ready")

    def only_b_ready() -> bool:
        slices = get(cluster, namespace, "endpointslices", "-l", "kubernetes.io/service-name=echo")["items"]
        ready = {
            e["targetRef"]["name"]
            for s in slices
            for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready")
        }
        return ready == {"echo-b"}

    eventually("the EndpointSlice to list only echo-b as ready", only_b_ready, timeout=30, interval=0.05)
    updated = time.monotonic()
    answer = ""
    while time.monotonic() - updated < 5:
        try:
            answer = ask(cluster_ip, timeout=0.5)
        except OSError:
            answer = ""
        if answer == "echo-b":
            break
        time.sleep(0.02)
    lag = time.monotonic() - updated
    print(f"new connections reached the new endpoint {lag:.3f}s after the EndpointSlice update")
    assert answer == "echo-b"
    assert lag < 1.0


def test_service_without_ready_endpoints_refuses_at_once(echo: tuple[LocalCluster, str, str]) -> None:
    cluster, namespace, _ = echo
    apply(
        cluster,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "nobody"},
            "spec": {"selector": {"app": "nobody-home"}, "ports": [{"port": 8080}]},
        },
    )
    address = get(cluster, namespace, "service", "nobody")["spec"]["clusterIP"]
    # Attempts made before kube-proxy has written the Service's REJECT rule time out, or are refused
    # only at a SYN retransmission; so wait for a first refusal, then time a fresh connection.
    script = (
        "import socket, time\n"
        "def attempt():\n"
        "    started = time.monotonic()\n"
        "    try:\n"
        f"        socket.create_connection(({address!r}, 8080), timeout=3)\n"
        "    except ConnectionRefusedError:\n"
        "        return time.monotonic() - started\n"
        "    except OSError:\n"
        "        return None\n"
        "for _ in range(20):\n"
        "    if attempt() is not None:\n"
        "        print(attempt()); break\n"
        "    time.sleep(0.5)\n"
    )
    out = kubectl(cluster, "-n", namespace, "exec", "echo-a", "--", "/opt/recluster/bin/python", "-c", script)
    assert out.stdout.strip(), "connections to a Service without endpoints were never refused"
    elapsed = float(out.stdout.strip())
    print(f"refused after {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5


def test_load_balancer_service_is_reachable_from_the_host(echo: tuple[LocalCluster, str, str]) -> None:
    cluster, namespace, _ = echo
    apply(
        cluster,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo-lb"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "echo"}, "ports": [{"port": 8080}]},
        },
    )

    def address() -> str | None:
        ingress = (
            get(cluster, namespace, "service", "echo-lb")["status"].get("loadBalancer", {}).get("ingress")
        )
        return ingress[0]["ip"] if ingress else None

    ip = eventually("a LoadBalancer address in the Service's status", address, timeout=30)
    assert ip.startswith("198.18.")
    assert eventually(f"{ip}:8080 to answer", lambda: _try(ip), timeout=30) in {"echo-a", "echo-b"}


def test_node_port_service_is_reachable_on_every_node(echo: tuple[LocalCluster, str, str]) -> None:
    cluster, namespace, _ = echo
    apply(
        cluster,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo-np"},
            "spec": {"type": "NodePort", "selector": {"app": "echo"}, "ports": [{"port": 8080}]},
        },
    )
    port = get(cluster, namespace, "service", "echo-np")["spec"]["ports"][0]["nodePort"]
    for node in cluster.nodes:
        answer = eventually(
            f"{node.address}:{port} to answer", lambda n=node: _try(n.address, port), timeout=30
        )
        assert answer in {"echo-a", "echo-b"}


def test_host_reaches_services_when_the_node_carrying_them_is_cut_off(
    echo: tuple[LocalCluster, str, str],
) -> None:
    """The host routes Services through one node. Cut off by other means than the tool (which
    re-routes at once), the add-ons' keeper sees its kube-proxy fail its health check and moves the
    route, as a cloud load balancer stops sending to a failed node."""
    cluster, namespace, cluster_ip = echo
    # an earlier test of this module may have moved readiness from echo-a to echo-b
    ready = eventually("an echo pod to be Ready", lambda: ready_pods(cluster, namespace, "app=echo"))[0]
    serving = ready["spec"]["nodeName"]
    gateway = next(n for n in cluster.nodes if n.name != serving)
    route = ServiceRoute(cluster.layout)
    route.apply(gateway.address)
    through_gateway = eventually("the Service through the chosen node", lambda: _try(cluster_ip), timeout=10)
    assert through_gateway == ready["metadata"]["name"]
    gateway.isolate()  # its link down, as a failed switch port would; nothing here re-routes
    started = time.monotonic()
    try:
        answer = eventually(
            "the Service to answer through another node", lambda: _try(cluster_ip), timeout=15, interval=0.1
        )
        print(f"Services reached through another node after {time.monotonic() - started:.1f}s")
        assert answer == ready["metadata"]["name"]
        assert route.current() not in (None, gateway.address)
    finally:
        cluster.heal_node(gateway.name)


def _try(address: str, port: int = 8080) -> str | None:
    try:
        return ask(address, port)
    except OSError:
        return None
