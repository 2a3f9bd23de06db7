"""Users declared in Kubernetes (REC spec.managed, passwords in Secrets) reach a REDB with
`rolesPermissions` and `defaultUser: false`, through the database's Service, with real redis-py
clients: the read-only user reads and gets NOPERM on a write, the default user is refused, a user
without the role cannot log in; all of it after a failover too; a changed Secret changes the
password; a user taken out of the spec is deleted and its open connection closed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.e2e.redb.conftest import RedbEnv
from tests.integration.node.support import closed_by_server

from recluster.local.harness import (
    apply_redb,
    eventually,
    kubectl,
    labelled_pods,
    rec_status,
    redb_manifest,
    secret_data,
    service,
    wait_active,
)

pytestmark = pytest.mark.e2e

PLUGIN = Path(sys.executable).parent / "kubectl-recluster"


def put_secret(env: RedbEnv, name: str, password: str) -> None:
    kubectl(
        env.cluster,
        "-n",
        env.namespace,
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "data": {"password": base64.b64encode(password.encode()).decode()},
            }
        ),
    )


def set_managed(env: RedbEnv, managed: dict[str, Any]) -> None:
    kubectl(
        env.cluster,
        "-n",
        env.namespace,
        "patch",
        "rec",
        "rec",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"managed": managed}}),
    )


def managed_status(env: RedbEnv) -> dict[str, Any]:
    body = json.loads(kubectl(env.cluster, "-n", env.namespace, "get", "rec", "rec", "-o", "json").stdout)
    return dict((body.get("status") or {}).get("managed") or {})


def works(call: Callable[[], Any]) -> bool:
    try:
        call()
    except redis.RedisError:
        return False
    return True


def refused(call: Callable[[], Any], error: type[Exception]) -> bool:
    try:
        call()
    except error:
        return True
    return False


def test_declared_users_reach_a_database_without_its_default_user(redb_env: RedbEnv) -> None:
    env, cluster, ns = redb_env, redb_env.cluster, redb_env.namespace
    put_secret(env, "reader-pw", "reader-password-1")
    put_secret(env, "outsider-pw", "outsider-password-2")
    users = [
        {"name": "reader", "roles": ["readers"], "passwordSecret": {"name": "reader-pw"}},
        {"name": "outsider", "passwordSecret": {"name": "outsider-pw"}},
    ]
    set_managed(env, {"roles": [{"name": "readers", "management": "none"}], "users": users})
    eventually(
        "the operator made the users",
        lambda: {u["name"] for u in managed_status(env).get("users") or []} == {"reader", "outsider"},
        timeout=120,
    )

    assert (
        apply_redb(
            cluster,
            ns,
            redb_manifest(
                "acldb",
                replication=True,
                defaultUser=False,
                rolesPermissions=[{"type": "redis-enterprise", "role": "readers", "acl": "Read Only"}],
            ),
        )
        == ""
    )
    status = wait_active(cluster, ns, "acldb")
    uid, port = status["databaseUID"], status["internalEndpoints"][0]["port"]
    assert kubectl(cluster, "-n", ns, "get", "secret", "redb-acldb", check=False).returncode != 0  # no secret
    address = eventually("Service acldb", lambda: service(cluster, ns, "acldb"), timeout=60)["spec"][
        "clusterIP"
    ]

    def client(user: str | None, password: str | None) -> redis.Redis:
        return redis.Redis(
            host=address,
            port=port,
            username=user,
            password=password,
            socket_timeout=3,
            socket_connect_timeout=3,
        )

    reader = client("reader", "reader-password-1")
    eventually("the reader reads through the Service", lambda: works(lambda: reader.get("k")), timeout=60)

    def checks() -> None:
        assert reader.get("k") is None
        assert refused(lambda: reader.set("k", "v"), redis.exceptions.NoPermissionError)
        assert refused(client(None, None).ping, redis.exceptions.AuthenticationError)  # NOAUTH
        assert refused(client("default", "anything").ping, redis.exceptions.AuthenticationError)
        assert refused(client("outsider", "outsider-password-2").ping, redis.exceptions.AuthenticationError)

    checks()

    # a failover of the database (the admin CLI asks the REST API): the same users, the same rules
    before = labelled_pods(cluster, ns, uid)[0]["metadata"]["name"]
    cli_env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig_path),
        "PATH": f"{PLUGIN.parent}{os.pathsep}{cluster.kube_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    failover = subprocess.run(
        [str(PLUGIN), "-n", ns, "failover", "acldb", "--timeout", "90"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=180,
        check=False,
    )
    assert failover.returncode == 0, failover.stderr[-2000:]
    eventually(
        "the master moved",
        lambda: (
            labelled_pods(cluster, ns, uid)
            and labelled_pods(cluster, ns, uid)[0]["metadata"]["name"] != before
        ),
        timeout=60,
    )
    eventually(
        "the reader reads on the new master",
        lambda: works(lambda: reader.get("k")) and works(lambda: reader.get("k")),
        timeout=60,
    )
    checks()

    # a new password in the Secret is the password (the operator looks at least every 30 s)
    put_secret(env, "reader-pw", "reader-password-3")
    eventually(
        "the new password works",
        lambda: works(lambda: client("reader", "reader-password-3").get("k")),
        timeout=120,
    )
    assert refused(
        lambda: client("reader", "reader-password-1").get("k"), redis.exceptions.AuthenticationError
    )

    # taken out of the spec: deleted, its open connection closed
    held = redis.Connection(
        host=address, port=port, username="reader", password="reader-password-3", socket_timeout=3
    )
    held.connect()
    assert not closed_by_server(held, "GET", "k")
    set_managed(env, {"roles": [{"name": "readers", "management": "none"}], "users": []})
    started = time.monotonic()
    eventually("the reader's open connection closed", lambda: closed_by_server(held, "GET", "k"), timeout=120)
    print(f"user removed from the spec -> connection closed in {time.monotonic() - started:.1f} s")
    assert refused(
        lambda: client("reader", "reader-password-3").get("k"), redis.exceptions.AuthenticationError
    )
    eventually("status.managed without the users", lambda: managed_status(env).get("users") == [], timeout=60)
    kubectl(cluster, "-n", ns, "delete", "redb", "acldb", "--wait=false")


def test_the_admin_password_rotates_with_the_rec_secret_while_a_writer_writes(redb_env: RedbEnv) -> None:
    cluster, ns = redb_env.cluster, redb_env.namespace
    assert apply_redb(cluster, ns, redb_manifest("rotdb")) == ""
    status = wait_active(cluster, ns, "rotdb")
    port = status["internalEndpoints"][0]["port"]
    address = eventually("Service rotdb", lambda: service(cluster, ns, "rotdb"), timeout=60)["spec"][
        "clusterIP"
    ]
    password = eventually(
        "the database secret", lambda: (secret_data(cluster, ns, "redb-rotdb") or {}).get("password")
    )
    db = redis.Redis(host=address, port=port, password=password, socket_timeout=3, socket_connect_timeout=3)
    eventually("the database answers through its Service", lambda: works(db.ping), timeout=60)
    cli_env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig_path),
        "PATH": f"{PLUGIN.parent}{os.pathsep}{cluster.kube_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def rest_works() -> bool:  # the admin CLI calls the REST API with the REC secret's credentials
        result = subprocess.run(
            [str(PLUGIN), "-n", ns, "status", "-o", "json"],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=60,
            check=False,
        )
        return result.returncode == 0

    assert rest_works()
    stop = threading.Event()
    writes, failed, states = [0], [], set()

    def writer() -> None:
        while not stop.is_set():
            try:
                db.set("rot", str(writes[0]))
                writes[0] += 1
            except redis.RedisError as exc:
                failed.append(repr(exc))
            time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        creds = secret_data(cluster, ns, "rec") or {}
        kubectl(
            cluster,
            "-n",
            ns,
            "patch",
            "secret",
            "rec",
            "--type=merge",
            "-p",
            json.dumps({"data": {"password": base64.b64encode(b"rotated-rec-password-1").decode()}}),
        )
        started = time.monotonic()
        eventually("REST calls with the new password", rest_works, timeout=120)
        took = time.monotonic() - started
        for _ in range(10):  # the REC stays Running, the REST API keeps answering
            states.add(rec_status(cluster, ns).get("state"))
            assert rest_works()
            time.sleep(1)
    finally:
        stop.set()
        thread.join()
    print(
        f"admin password rotated: REST with the new one after {took:.1f} s; {writes[0]} writes, "
        f"{len(failed)} failed; REC states {states}"
    )
    assert creds.get("password") and creds["password"] != "rotated-rec-password-1"
    assert failed == [] and states == {"Running"}
    kubectl(cluster, "-n", ns, "delete", "redb", "rotdb", "--wait=false")
