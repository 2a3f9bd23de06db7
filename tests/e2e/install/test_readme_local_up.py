"""The README's first command, as a newcomer runs it: on a clean checkout, `bin/recluster local up`
sets everything up, installs the operator from deploy/bundle.yaml as a pod of the local cluster,
brings the example REC and REDB up and prints how to connect. The test connects to the database and
the console it printed, runs the command again (harmless), and `bin/recluster local down`.

The cluster gets its own state directory (RECLUSTER_LOCAL_STATE), so it neither touches a
developer's default cluster nor the one the other e2e tests share."""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from recluster.local.cluster import LocalCluster
from recluster.local.paths import repo_dir

pytestmark = pytest.mark.e2e

REPO = Path(repo_dir())
UP_TIMEOUT = 1800  # a cold machine builds Kubernetes (~6 min) and the image first


def readme_command(purpose: str) -> str:
    """The README's command whose comment starts with `purpose` (the newcomer's copy and paste)."""
    for line in (REPO / "README.md").read_text().splitlines():
        command, _, comment = line.partition("#")
        if comment.strip().startswith(purpose) and command.strip():
            return command.strip()
    raise AssertionError(f"README.md has no command commented '{purpose}...'")


def run(command: str, checkout: Path, env: dict[str, str], timeout: float
        ) -> subprocess.CompletedProcess[str]:
    """A command line as a newcomer pastes it into a shell (the printed ones use $(...) and pipes)."""
    return subprocess.run(command, shell=True, cwd=checkout, env=env, capture_output=True,  # noqa: S602
                          text=True, timeout=timeout, check=False)


def field(output: str, label: str) -> str:
    match = re.search(rf"^  {re.escape(label)}:\s+(.+)$", output, re.MULTILINE)
    assert match, f"`local up` printed no '{label}:' line:\n{output}"
    return match.group(1).strip()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A clean clone of this repository's HEAD and an environment naming a state directory of its own."""
    root = tmp_path_factory.mktemp("newcomer")
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(root / "recluster")], check=True, timeout=120)
    env = {**os.environ, "RECLUSTER_LOCAL_STATE": str(root / "state")}
    env.pop("KUBECONFIG", None)
    env.pop("VIRTUAL_ENV", None)
    yield root / "recluster", env
    # whatever happened, the cluster this test started is stopped by its recorded ids
    cluster = LocalCluster.load(root / "state")
    if cluster is not None:
        cluster.down()


def test_readme_first_command_gives_a_working_database_and_console(
    checkout: tuple[Path, dict[str, str]],
) -> None:
    directory, env = checkout
    command = readme_command("set everything up")
    assert command == "bin/recluster local up"
    started = time.monotonic()
    result = run(command, directory, env, UP_TIMEOUT)
    took = time.monotonic() - started
    print(f"`{command}` on a clean checkout: exit {result.returncode} after {took:.0f}s")
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    # progress went to stderr, every wait named
    assert "REC rec to be Running" in result.stderr and "REDB redb to be active" in result.stderr

    # the operator is the bundle's, a pod of the cluster under its own service account
    kubectl = field(out, "kubectl").split(" -n ")[0]
    namespace = re.search(r" -n (\S+) get rec", field(out, "kubectl"))
    assert namespace is not None
    ns = namespace.group(1)

    def kube(*args: str) -> str:
        done = run(" ".join([kubectl, "-n", ns, *args]), directory, env, 60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    pods = json.loads(kube("get", "pods", "-l", "name=redis-enterprise-operator", "-o", "json"))["items"]
    assert len(pods) == 1 and pods[0]["spec"]["serviceAccountName"] == "redis-enterprise-operator"
    assert pods[0]["status"]["phase"] == "Running"
    lease = json.loads(kube("get", "lease", "redis-enterprise-operator", "-o", "json"))
    assert lease["spec"]["holderIdentity"] == pods[0]["metadata"]["name"]

    # no secret value in what was printed (not a terminal): the printed command reads it
    password_command = field(out, "database password")
    assert password_command.startswith(kubectl) and "base64 -d" in password_command
    password = run(password_command, directory, env, 60).stdout
    assert len(password) >= 16
    console_password = run(field(out, "console password"), directory, env, 60).stdout
    for secret in (password, console_password):
        assert secret not in out and secret not in result.stderr

    # the database it printed takes writes from the host
    address, port = field(out, "database").split()[0].rsplit(":", 1)
    client = redis.Redis(host=address, port=int(port), password=password, socket_timeout=5)
    assert client.set("newcomer", "hello") and client.get("newcomer") == b"hello"
    client.close()

    # the console it printed: a login with the printed user and the secret's password
    console = field(out, "console")
    url, user = console.split()[0], re.search(r"user (\S+);", console)
    assert user is not None
    ca = base64.b64decode(json.loads(kube("get", "secret", "rec-tls", "-o", "json"))["data"]["ca.crt"])
    # the nodes' certificate is signed by the cluster's CA and names the Services, not this cluster
    # IP: the chain is verified against that CA, the host name is not
    tls = ssl.create_default_context(cadata=ca.decode())
    tls.check_hostname = False
    with httpx.Client(verify=tls, timeout=15) as web:
        wrong = web.post(url + "/login", json={"username": user.group(1), "password": "not-it"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "wrong username or password"
        login = web.post(url + "/login", json={"username": user.group(1), "password": console_password})
        assert login.status_code == 200, login.text
        session = web.get(url + "/api/session")
        assert session.status_code == 200 and session.json()["username"] == user.group(1)
        assert web.get(url + "/api/snapshot").status_code == 200

    # running it again is harmless: same objects, same database, data kept
    again = run(command, directory, env, 600)
    assert again.returncode == 0, again.stderr[-4000:]
    assert field(again.stdout, "database") == field(out, "database")
    client = redis.Redis(host=address, port=int(port), password=password, socket_timeout=5)
    assert client.get("newcomer") == b"hello"
    client.close()

    # and `local down` stops everything it started
    down = run("bin/recluster local down", directory, env, 300)
    assert down.returncode == 0, down.stderr[-4000:]
    cluster = LocalCluster.load(Path(env["RECLUSTER_LOCAL_STATE"]))
    assert cluster is not None and not cluster.ready()
    assert all(not node.running() for node in cluster.nodes)
