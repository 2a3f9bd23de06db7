"""Real nodes: the project image runs as real containers on three kubelets, with volumes, probes,
restarts, logs and exec; a node can be stopped and isolated, and comes back."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.local.support import IMAGE, apply, node_ready, temporary_namespace

from recluster.local.cluster import LocalCluster
from recluster.local.harness import eventually, get, kubectl, ready_pods

pytestmark = pytest.mark.e2e


def redis_ping(address: str, timeout: float = 2.0, port: int = 6379) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def statefulset(name: str) -> list[dict[str, Any]]:
    labels = {"app": name}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-secret"},
            "stringData": {"token": "s3cret-value"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 6379}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name},
            "spec": {
                "serviceName": name,
                "replicas": 3,
                "podManagementPolicy": "OrderedReady",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "affinity": {
                            "podAntiAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "labelSelector": {"matchLabels": labels},
                                        "topologyKey": "kubernetes.io/hostname",
                                    }
                                ]
                            }
                        },
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": "redis",
                                "image": IMAGE,
                                "command": [
                                    "redis-server",
                                    "--port",
                                    "6379",
                                    "--protected-mode",
                                    "no",
                                    "--dir",
                                    "/data",
                                    "--appendonly",
                                    "yes",
                                ],
                                "env": [
                                    {
                                        "name": "POD_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                    },
                                    {
                                        "name": "POD_IP",
                                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                                    },
                                    {
                                        "name": "NODE_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    },
                                ],
                                "readinessProbe": {
                                    "exec": {"command": ["redis-cli", "ping"]},
                                    "periodSeconds": 2,
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/data"},
                                    {"name": "secret", "mountPath": "/etc/secret", "readOnly": True},
                                ],
                            }
                        ],
                        "volumes": [{"name": "secret", "secret": {"secretName": f"{name}-secret"}}],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "64Mi"}},
                        },
                    }
                ],
            },
        },
    ]


@pytest.fixture(scope="module")
def cluster(local_cluster: LocalCluster) -> LocalCluster:
    return local_cluster


@pytest.fixture(scope="module")
def web(cluster: LocalCluster) -> Iterator[tuple[str, float]]:
    """A StatefulSet of three project-image pods; yields its namespace and the seconds to 3/3 Ready."""
    with temporary_namespace(cluster) as namespace:
        started = time.monotonic()
        apply(cluster, namespace, *statefulset("web"))
        eventually(
            "StatefulSet web to be 3/3 Ready",
            lambda: len(ready_pods(cluster, namespace, "app=web")) == 3,
            timeout=180,
        )
        yield namespace, time.monotonic() - started


def test_statefulset_is_ready_with_one_pod_per_node(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, seconds = web
    print(f"StatefulSet of 3 to 3/3 Ready: {seconds:.1f}s")
    pods = ready_pods(cluster, namespace, "app=web")
    assert len({p["spec"]["nodeName"] for p in pods}) == 3
    assert {p["metadata"]["name"] for p in pods} == {"web-0", "web-1", "web-2"}
    claims = get(cluster, namespace, "pvc")["items"]
    assert sorted(c["status"]["phase"] for c in claims) == ["Bound"] * 3
    for pod in pods:
        env = kubectl(cluster, "-n", namespace, "exec", pod["metadata"]["name"], "--", "env").stdout
        assert f"POD_NAME={pod['metadata']['name']}" in env
        assert f"POD_IP={pod['status']['podIP']}" in env
        assert f"NODE_NAME={pod['spec']['nodeName']}" in env
        secret = kubectl(
            cluster, "-n", namespace, "exec", pod["metadata"]["name"], "--", "cat", "/etc/secret/token"
        )
        assert secret.stdout == "s3cret-value"
        uid = kubectl(
            cluster, "-n", namespace, "exec", pod["metadata"]["name"], "--", "id", "-u"
        ).stdout.strip()
        assert uid == "1001"


def test_pods_answer_from_the_host_and_from_each_other(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web
    pods = ready_pods(cluster, namespace, "app=web")
    for pod in pods:
        assert redis_ping(pod["status"]["podIP"]), f"host cannot reach {pod['metadata']['name']}"
    for source in pods:
        for target in pods:
            if source is target:
                continue
            out = kubectl(
                cluster,
                "-n",
                namespace,
                "exec",
                source["metadata"]["name"],
                "--",
                "redis-cli",
                "-h",
                target["status"]["podIP"],
                "ping",
            ).stdout.strip()
            assert out == "PONG", f"{source['metadata']['name']} cannot reach {target['metadata']['name']}"


def test_logs_and_exec(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web
    logs = kubectl(cluster, "-n", namespace, "logs", "web-0").stdout
    assert "Ready to accept connections" in logs
    assert (
        kubectl(cluster, "-n", namespace, "exec", "web-0", "--", "redis-cli", "ping").stdout.strip() == "PONG"
    )


def test_port_forward_reaches_the_pod(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web
    with socket.socket() as probe:  # a free loopback port for kubectl to listen on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        str(cluster.kube_dir() / "kubectl"),
        "--kubeconfig",
        str(cluster.kubeconfig_path),
        "-n",
        namespace,
        "port-forward",
        "--address",
        "127.0.0.1",
        "pod/web-0",
        f"{port}:6379",
    ]
    forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        eventually("kubectl port-forward to answer", lambda: redis_ping("127.0.0.1", port=port), timeout=30)
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_volume_expands_when_its_claim_asks_for_more(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web
    kubectl(
        cluster,
        "-n",
        namespace,
        "patch",
        "pvc",
        "data-web-0",
        "--type=merge",
        "-p",
        '{"spec": {"resources": {"requests": {"storage": "128Mi"}}}}',
    )

    def expanded() -> bool:
        claim = get(cluster, namespace, "pvc", "data-web-0")
        volume = json.loads(kubectl(cluster, "get", "pv", claim["spec"]["volumeName"], "-o", "json").stdout)
        return claim["status"].get("capacity", {}).get("storage") == "128Mi" and (
            volume["spec"]["capacity"]["storage"] == "128Mi"
        )

    eventually("the volume and its claim to report 128Mi", expanded, timeout=30)


def test_killed_container_is_restarted(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web

    def restarts() -> int:
        pod = get(cluster, namespace, "pod", "web-1")
        return int(pod["status"]["containerStatuses"][0]["restartCount"])

    before = restarts()
    kubectl(cluster, "-n", namespace, "exec", "web-1", "--", "redis-cli", "shutdown", "nosave", check=False)
    eventually("web-1's restartCount to grow", lambda: restarts() > before, timeout=60)
    eventually(
        "web-1 to be Ready again",
        lambda: "web-1" in {p["metadata"]["name"] for p in ready_pods(cluster, namespace, "app=web")},
    )


def test_deleted_pod_comes_back_with_its_volume(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web
    exec_ = ["-n", namespace, "exec", "web-2", "--", "redis-cli"]
    assert kubectl(cluster, *exec_, "set", "kept", "across-restarts").stdout.strip() == "OK"
    kubectl(cluster, *exec_, "save")
    old_uid = get(cluster, namespace, "pod", "web-2")["metadata"]["uid"]
    kubectl(cluster, "-n", namespace, "delete", "pod", "web-2", "--wait=true", timeout=120)

    def recreated() -> bool:
        pods = {p["metadata"]["name"]: p for p in ready_pods(cluster, namespace, "app=web")}
        return "web-2" in pods and pods["web-2"]["metadata"]["uid"] != old_uid

    eventually("web-2 to come back Ready", recreated, timeout=120)
    assert kubectl(cluster, *exec_, "get", "kept").stdout.strip() == "across-restarts"


def test_in_cluster_config_is_denied_what_its_role_does_not_allow(cluster: LocalCluster) -> None:
    with temporary_namespace(cluster) as namespace:
        apply(
            cluster,
            namespace,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "client", "labels": {"app": "client"}},
                "spec": {
                    "serviceAccountName": "reader",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
                },
            },
        )
        eventually("the client pod to run", lambda: ready_pods(cluster, namespace, "app=client"))
        # the project's own adapter (what the operator and the rigger use), with the pod's
        # service account: its in-cluster credentials, refused what the Role does not grant
        script = (
            "import asyncio, json\n"
            "from recluster.clients.kubernetes import Kube, KubeError\n"
            "async def main():\n"
            "    kube = await Kube.connect('e2e')\n"
            "    try:\n"
            f"        pods = await kube.list('v1', 'Pod', {namespace!r})\n"
            "        result = {'pods': [p['metadata']['name'] for p in pods]}\n"
            "        try:\n"
            f"            await kube.list('v1', 'Secret', {namespace!r})\n"
            "            result['secrets'] = 'allowed'\n"
            "        except KubeError as exc:\n"
            "            result['secrets'] = exc.status\n"
            "        print(json.dumps(result))\n"
            "    finally:\n"
            "        await kube.close()\n"
            "asyncio.run(main())\n"
        )
        out = kubectl(
            cluster, "-n", namespace, "exec", "client", "--", "/opt/recluster/bin/python", "-c", script
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result == {"pods": ["client"], "secrets": 403}


def test_stopped_node_turns_not_ready_and_its_pods_move(cluster: LocalCluster) -> None:
    with temporary_namespace(cluster) as namespace:
        tolerate = [
            {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        ]
        apply(
            cluster,
            namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "mover"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "mover"}},
                    "template": {
                        "metadata": {"labels": {"app": "mover"}},
                        "spec": {
                            "tolerations": tolerate,
                            "terminationGracePeriodSeconds": 1,
                            "containers": [
                                {
                                    "name": "redis",
                                    "image": IMAGE,
                                    "command": ["redis-server", "--port", "6379", "--protected-mode", "no"],
                                    "readinessProbe": {
                                        "exec": {"command": ["redis-cli", "ping"]},
                                        "periodSeconds": 2,
                                    },
                                }
                            ],
                        },
                    },
                },
            },
        )
        pod = eventually("the mover pod to be Ready", lambda: ready_pods(cluster, namespace, "app=mover"))[0]
        victim = pod["spec"]["nodeName"]
        started = time.monotonic()
        cluster.stop_node(victim)
        try:
            eventually(f"{victim} to turn NotReady", lambda: not node_ready(cluster, victim), timeout=90)
            print(f"node NotReady after {time.monotonic() - started:.1f}s")

            def moved() -> bool:
                return any(
                    p["spec"]["nodeName"] != victim for p in ready_pods(cluster, namespace, "app=mover")
                )

            eventually("the pod to be replaced on another node", moved, timeout=120)
            print(f"pod Ready on another node after {time.monotonic() - started:.1f}s")
        finally:
            cluster.start_node(victim, timeout=180)
        assert node_ready(cluster, victim)


def test_isolated_node_stops_answering_and_heals(cluster: LocalCluster, web: tuple[str, float]) -> None:
    namespace, _ = web
    # The test before stops and restarts a node; web-0 may live there and still be coming back.
    def web0() -> dict[str, Any] | None:
        pods = ready_pods(cluster, namespace, "app=web")
        return next((p for p in pods if p["metadata"]["name"] == "web-0"), None)

    pod = eventually("web-0 to be Ready", web0, timeout=120)
    address, node = pod["status"]["podIP"], pod["spec"]["nodeName"]
    assert redis_ping(address)
    cluster.isolate_node(node)
    try:
        assert not redis_ping(address, timeout=2)
    finally:
        cluster.heal_node(node)
    eventually(f"{node}'s pod to answer again after healing", lambda: redis_ping(address), timeout=30)
    eventually(f"{node} to be Ready after healing", lambda: node_ready(cluster, node), timeout=60)
