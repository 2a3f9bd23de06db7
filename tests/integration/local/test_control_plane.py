"""The local control plane is real Kubernetes: schema validation, RBAC, controllers, garbage
collection, scheduling and service-account tokens all behave as in a production cluster."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from recluster.local.cluster import LocalCluster
from recluster.local.kubebuild import kubernetes_version
from recluster.local.kubeconfig import kubeconfig, write_kubeconfig
from recluster.local.pki import CertificateAuthority

pytestmark = pytest.mark.integration


async def eventually(what: str, check: Callable[[], Awaitable[bool]], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.25)


def test_kubectl_reports_the_pinned_version(kubectl) -> None:  # type: ignore[no-untyped-def]
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    expected = kubernetes_version()
    assert versions["clientVersion"]["gitVersion"] == expected
    assert versions["serverVersion"]["gitVersion"] == expected
    assert kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


async def test_crd_schema_rejects_an_invalid_object(api: k8s.ApiClient, namespace: str) -> None:
    group, plural = f"t{uuid.uuid4().hex[:8]}.example.com", "widgets"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 9}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext = k8s.ApiextensionsV1Api(api)
    await ext.create_custom_resource_definition(crd)
    custom = k8s.CustomObjectsApi(api)
    try:

        async def established() -> bool:
            got = await ext.read_custom_resource_definition(f"{plural}.{group}")
            return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

        await eventually("the CRD to be established", established)

        def widget(name: str, size: object) -> dict[str, object]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"size": size},
            }

        with pytest.raises(ApiException) as refused:
            await custom.create_namespaced_custom_object(group, "v1", namespace, plural, widget("bad", 42))
        assert refused.value.status == 422
        assert "spec.size" in refused.value.body
        with pytest.raises(ApiException) as wrong_type:
            await custom.create_namespaced_custom_object(group, "v1", namespace, plural, widget("bad2", "x"))
        assert wrong_type.value.status == 422
        created = await custom.create_namespaced_custom_object(
            group, "v1", namespace, plural, widget("ok", 3)
        )
        assert created["spec"]["size"] == 3
    finally:
        await ext.delete_custom_resource_definition(f"{plural}.{group}")


async def test_rbac_denies_until_a_role_binding_allows(
    api: k8s.ApiClient, namespace: str, control_plane: LocalCluster, tmp_path: Path
) -> None:
    user = f"alice-{uuid.uuid4().hex[:6]}"
    pair = CertificateAuthority(control_plane.paths.pki).issue(tmp_path, user, common_name=user, client=True)
    path = write_kubeconfig(
        tmp_path / "alice.yaml",
        kubeconfig(control_plane.layout.apiserver_url, control_plane.paths.pki / "ca.crt", user, pair),
    )
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(config_file=str(path), client_configuration=configuration)
    async with k8s.ApiClient(configuration) as alice_client:
        alice = k8s.CoreV1Api(alice_client)
        with pytest.raises(ApiException) as denied:
            await alice.list_namespaced_config_map(namespace)
        assert denied.value.status == 403
        assert user in denied.value.body

        rbac = k8s.RbacAuthorizationV1Api(api)
        await rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "read-config"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
            },
        )
        await rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "alice-reads"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-config"},
                "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
            },
        )

        async def allowed() -> bool:
            try:
                await alice.list_namespaced_config_map(namespace)
            except ApiException as exc:
                assert exc.status == 403
                return False
            return True

        await eventually("the RoleBinding to take effect", allowed, within=30)
        with pytest.raises(ApiException) as still_denied:  # the Role grants reads only
            await alice.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
        assert still_denied.value.status == 403


async def test_deployment_gets_replicaset_and_pods_then_garbage_collected(
    api: k8s.ApiClient, namespace: str
) -> None:
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    labels = {"app": "web"}
    await apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "docker.io/library/recluster:none"}]},
                },
            },
        },
    )

    async def pods_created() -> bool:
        return len((await core.list_namespaced_pod(namespace, label_selector="app=web")).items) == 2

    await eventually("the ReplicaSet controller to create 2 pods", pods_created)
    replica_sets = (await apps.list_namespaced_replica_set(namespace)).items
    assert len(replica_sets) == 1
    owner = replica_sets[0].metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("Deployment", "web")

    await apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")

    async def collected() -> bool:
        rs = (await apps.list_namespaced_replica_set(namespace)).items
        pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
        return not rs and not pods

    await eventually("the garbage collector to delete the ReplicaSet and its pods", collected)


async def test_scheduler_binds_a_pod_once_a_node_exists(api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    node_name = f"fake-{uuid.uuid4().hex[:8]}"
    await core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "p"},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": node_name},
                # the node lifecycle controller taints a node without a kubelet as not-ready
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "c", "image": "docker.io/library/recluster:none"}],
            },
        },
    )
    await asyncio.sleep(1)
    assert (await core.read_namespaced_pod("p", namespace)).spec.node_name is None
    await core.create_node({"metadata": {"name": node_name, "labels": {"kubernetes.io/hostname": node_name}}})
    try:
        await core.patch_node_status(
            node_name,
            {
                "status": {
                    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                }
            },
        )

        async def bound() -> bool:
            return (await core.read_namespaced_pod("p", namespace)).spec.node_name == node_name

        await eventually("the scheduler to bind the pod to the new node", bound)
    finally:
        await core.delete_node(node_name)


async def test_token_request_token_authenticates(
    api: k8s.ApiClient, namespace: str, control_plane: LocalCluster
) -> None:
    core = k8s.CoreV1Api(api)
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": "robot"}})
    request = await core.create_namespaced_service_account_token(
        "robot", namespace, {"spec": {"expirationSeconds": 600}}
    )
    token = request.status.token
    configuration = k8s.Configuration(host=control_plane.layout.apiserver_url)
    configuration.ssl_ca_cert = str(control_plane.paths.pki / "ca.crt")
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with k8s.ApiClient(configuration) as robot_client:
        review = await k8s.AuthenticationV1Api(robot_client).create_self_subject_review({})
    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:robot"
    bogus = k8s.Configuration(host=control_plane.layout.apiserver_url)
    bogus.ssl_ca_cert = str(control_plane.paths.pki / "ca.crt")
    bogus.api_key = {"BearerToken": token[:-4] + "AAAA"}
    bogus.api_key_prefix = {"BearerToken": "Bearer"}
    async with k8s.ApiClient(bogus) as bogus_client:
        with pytest.raises(ApiException) as refused:
            await k8s.AuthenticationV1Api(bogus_client).create_self_subject_review({})
    assert refused.value.status == 401
