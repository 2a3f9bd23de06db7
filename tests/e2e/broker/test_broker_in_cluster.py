"""`serviceBrokerSpec.enabled: true` brings the broker up in the local cluster behind its Service,
serving HTTPS only with the certificate of its own Secret and its own Basic credential (not the
REC admin's). A binding of a replicated database carries a user of its own and the database's
Service address: its credentials work through that address, keep working after a failover of the
database, and stop working after unbind (a new connection is refused, an open one is closed).
Disabling the broker removes it and keeps its volume and Secrets."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tests.e2e.local.support import apply
from tests.integration.operator.support import exists, wait_gone

from recluster.clients.cluster_api import ClusterApi
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    OperatorProcess,
    eventually,
    get,
    node_pods,
    operator_namespace,
    ready_pods,
    rec_manifest,
    secret_data,
    start_operator,
    wait_state,
)
from recluster.local.run import CommandError

pytestmark = pytest.mark.e2e

BROKER = "rec-service-broker"
BROKER_TLS = "rec-service-broker-tls"


@dataclass
class BrokerEnv:
    cluster: LocalCluster
    namespace: str
    operator: OperatorProcess
    address: str  # the broker Service's cluster IP
    port: int
    ca_file: Path
    username: str
    password: str

    @property
    def server_name(self) -> str:
        return f"{BROKER}.{self.namespace}.svc.cluster.local"

    def request(self, method: str, path: str, *, auth: tuple[str, str] | None = None,
                **kwargs: Any) -> httpx.Response:
        """HTTPS to the broker's Service, its certificate verified against the CA of its Secret for
        the Service's name."""
        user, password = auth or (self.username, self.password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "X-Broker-API-Version": "2.17"}
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_file)), timeout=30) as client:
            return client.request(method, f"https://{self.address}:{self.port}{path}", headers=headers,
                                  extensions={"sni_hostname": self.server_name}, **kwargs)

    def poll(self, instance_id: str, operation: str, timeout: float = 300) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            response = self.request("GET", f"/v2/service_instances/{instance_id}/last_operation",
                                    params={"operation": operation})
            if response.status_code == 410:
                return {"state": "gone"}
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body if body["state"] != "in progress" else None

        result: dict[str, Any] = eventually(f"operation {operation}", done, timeout=timeout, interval=1)
        return result


@pytest.fixture(scope="module")
def broker_env(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerEnv]:
    cluster = local_cluster
    workdir = tmp_path_factory.mktemp("broker-e2e")
    with operator_namespace(cluster) as namespace:
        operator = start_operator(cluster, namespace, workdir)
        try:
            apply(cluster, namespace, rec_manifest(serviceBrokerSpec={"enabled": True}))
            wait_state(cluster, namespace, "Running", timeout=480)
            eventually("the broker pod to be Ready",
                       lambda: ready_pods(cluster, namespace, "redis.io/role=service-broker"), timeout=240)
            service = get(cluster, namespace, "service", BROKER)
            tls = eventually("the broker's TLS Secret", lambda: secret_data(cluster, namespace, BROKER_TLS))
            auth = eventually("the broker's credential", lambda: secret_data(cluster, namespace, BROKER))
            ca_file = workdir / "broker-ca.crt"
            ca_file.write_text(tls["ca.crt"])
            yield BrokerEnv(cluster, namespace, operator, service["spec"]["clusterIP"],
                            service["spec"]["ports"][0]["port"], ca_file, auth["username"], auth["password"])
        finally:
            operator.stop()


def redis_client(cluster: LocalCluster, uri: str) -> redis.Redis:
    """A client of a binding's URI: its host (a cluster DNS name) asked of the cluster's DNS, the
    rest as the binding says. No retries: a closed connection is seen as closed."""
    parts = urlsplit(uri)
    assert parts.hostname and parts.port
    address = cluster.resolve(parts.hostname)[0]
    return redis.Redis(host=address, port=parts.port, username=parts.username, password=parts.password,
                       socket_timeout=5, retry=Retry(NoBackoff(), 0))


def answers(cluster: LocalCluster, uri: str) -> dict[str, Any] | None:
    """The server behind the binding's address (its INFO) once a write with the binding's user
    succeeds there; None while it cannot."""
    try:
        client = redis_client(cluster, uri)
    except (CommandError, IndexError):  # the name not resolved yet
        return None
    try:
        client.set("broker-e2e", str(time.time()))
        info: dict[str, Any] = client.info()
        return info
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def refused(cluster: LocalCluster, uri: str) -> bool:
    """The binding's user is refused at the binding's address; False while the name resolves to no
    ready address (a headless name has none during a failover: CI saw NXDOMAIN there), so it is asked
    again."""
    try:
        client = redis_client(cluster, uri)
    except (CommandError, IndexError):
        return False
    try:
        client.ping()
    except redis.AuthenticationError:
        return True
    finally:
        client.close()
    return False


def closed(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.ConnectionError:
        return True
    return False


async def rest(env: BrokerEnv, call: str, *args: Any) -> Any:
    """A call of the cluster's REST API, on a node pod's address, with the REC's admin credential."""
    admin = secret_data(env.cluster, env.namespace, "rec")
    assert admin is not None
    pod_ip = node_pods(env.cluster, env.namespace)[0]["status"]["podIP"]
    async with ClusterApi(f"https://{pod_ip}:9443", admin["username"], admin["password"]) as api:
        return await getattr(api, call)(*args)


def master_node(env: BrokerEnv, uid: int) -> str | None:
    shards = asyncio.run(rest(env, "shards", uid))
    return next((str(s["node_uid"]) for s in shards if s["role"] == "master" and s["status"] == "active"),
                None)


def test_https_only_with_the_broker_credential(broker_env: BrokerEnv) -> None:
    env = broker_env
    response = eventually("the broker's catalog", lambda: _answered(env), timeout=120)
    plans = [plan["name"] for svc in response.json()["services"] for plan in svc["plans"]]
    assert {"small", "medium", "large"} <= set(plans)
    # a platform registers the broker with the broker's credential; the REC admin's is refused
    admin = secret_data(env.cluster, env.namespace, "rec")
    assert admin is not None and admin["password"] != env.password
    assert env.request("GET", "/v2/catalog", auth=(admin["username"], admin["password"])).status_code == 401
    assert env.request("GET", "/v2/catalog", auth=(env.username, "not-the-password")).status_code == 401
    # nothing is served in clear on the broker's port
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{env.address}:{env.port}/v2/catalog", timeout=5,
                  headers={"X-Broker-API-Version": "2.17"})


def _answered(env: BrokerEnv) -> httpx.Response | None:
    try:
        response = env.request("GET", "/v2/catalog")
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


def test_a_binding_works_through_the_service_across_a_failover_until_unbound(broker_env: BrokerEnv) -> None:
    env, cluster = broker_env, broker_env.cluster
    catalog = env.request("GET", "/v2/catalog").json()["services"][0]
    service_id, plan_id = catalog["id"], next(p["id"] for p in catalog["plans"] if p["name"] == "medium")
    ids = {"service_id": service_id, "plan_id": plan_id}
    instance_id = f"e2e-{uuid.uuid4().hex[:8]}"
    url = f"/v2/service_instances/{instance_id}"
    response = env.request("PUT", url, params={"accepts_incomplete": "true"},
                           json={**ids, "organization_guid": "org", "space_guid": "space"})
    assert response.status_code == 202, response.text
    assert env.poll(instance_id, response.json()["operation"])["state"] == "succeeded"

    response = env.request("PUT", f"{url}/service_bindings/app-1", json={**ids, "app_guid": "app-1"})
    assert response.status_code == 201, response.text
    credentials = response.json()["credentials"]
    bdb_name = credentials["name"]
    # the database's Service, named as the rigger names it, never a pod
    assert credentials["host"] == f"{bdb_name}.{env.namespace}.svc.cluster.local"
    assert f"{credentials['username']}:" in credentials["uri"] and credentials["username"] != "default"
    assert all(s["host"].endswith(f".rec.{env.namespace}.svc.cluster.local")
               for s in credentials["sentinels"])
    before = eventually("the binding's user writing through the Service",
                        lambda: answers(cluster, credentials["uri"]), timeout=60)
    assert before["role"] == "master"

    uid = next(b["uid"] for b in asyncio.run(rest(env, "bdbs")) if b["name"] == bdb_name)
    old_master = master_node(env, uid)
    asyncio.run(rest(env, "fail_over_bdb", uid))
    eventually("another node's shard the master", lambda: master_node(env, uid) not in (None, old_master),
               timeout=120)

    def new_master() -> dict[str, Any] | None:
        info = answers(cluster, credentials["uri"])
        return info if info is not None and info["run_id"] != before["run_id"] else None

    after = eventually("the same credentials writing to the new master through the Service", new_master,
                       timeout=120)
    assert after["role"] == "master"

    held = redis_client(cluster, credentials["uri"])  # open across the unbind
    try:
        assert held.ping()
        response = env.request("DELETE", f"{url}/service_bindings/app-1", params=ids)
        assert response.status_code == 200, response.text
        eventually("the unbound user's open connection closed", lambda: closed(held), timeout=30)
    finally:
        held.close()
    eventually("the unbound user's new connection refused",
               lambda: refused(cluster, credentials["uri"]), timeout=30)

    response = env.request("DELETE", url, params={**ids, "accepts_incomplete": "true"})
    assert response.status_code == 202, response.text
    assert env.poll(instance_id, response.json()["operation"])["state"] == "gone"


def test_disabling_the_broker_removes_it_and_keeps_its_volume_and_secrets(broker_env: BrokerEnv) -> None:
    env, cluster, namespace = broker_env, broker_env.cluster, broker_env.namespace
    rec = get(cluster, namespace, "rec", "rec")
    rec["spec"]["serviceBrokerSpec"] = {"enabled": False}
    apply(cluster, namespace, {"apiVersion": rec["apiVersion"], "kind": rec["kind"],
                               "metadata": {"name": "rec"}, "spec": rec["spec"]})
    wait_gone("the broker Deployment", lambda: exists(cluster, namespace, "deployment", BROKER), timeout=120)
    wait_gone("the broker Service", lambda: exists(cluster, namespace, "service", BROKER), timeout=60)
    assert exists(cluster, namespace, "pvc", BROKER)
    # kept: the credential and certificate platforms registered the broker with
    assert exists(cluster, namespace, "secret", BROKER) and exists(cluster, namespace, "secret", BROKER_TLS)
    assert env.password not in env.operator.log()
