"""What `recluster local up` does after the cluster is up: install the operator the way users do
(deploy/bundle.yaml into a namespace, then the admission webhook), apply the examples (a REC with
persistence and a replicated REDB), wait with progress until they are Running and active, and say
how to connect. Every step is an apply, so running it again changes nothing that is already right."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.console import Console

from recluster.install.bundle import BUNDLE_FILE, admission_manifests
from recluster.local.cluster import LocalCluster
from recluster.local.run import CommandError

OPERATOR_DEPLOYMENT = "redis-enterprise-operator"
SAMPLE_NAMESPACE = "recluster"
SAMPLE_REC_FILE = "rec-persistent.yaml"
SAMPLE_REDB_FILE = "redb-replicated.yaml"
T = TypeVar("T")


@dataclass(frozen=True)
class Connection:
    """How to reach the sample: addresses from the cluster, secrets by name (values only on request)."""

    namespace: str
    kubeconfig: Path
    rec: str
    redb: str
    db_service: str  # <name>.<namespace>.svc.cluster.local
    db_address: str  # the Service's cluster IP: the host routes the Service range through a node
    db_port: int
    db_secret: str
    console_url: str
    console_secret: str
    console_username: str


class SampleError(Exception):
    pass


def wait(what: str, probe: Callable[[], tuple[T | None, str]], timeout: float, console: Console,
         interval: float = 2.0) -> T:
    """Poll `probe` (-> (result or None, what it sees now)) until it returns a result; progress shows
    what is awaited, what is seen and for how long; past `timeout` the error says both."""
    started = time.monotonic()
    seen = "nothing yet"
    with console.status(f"waiting for {what}") as status:
        while True:
            try:
                result, seen = probe()
            except CommandError as exc:
                result, seen = None, str(exc).splitlines()[-1] if str(exc) else "kubectl failed"
            if result is not None:
                console.print(f"[green]✓[/green] {what} ({time.monotonic() - started:.0f}s)")
                return result
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise SampleError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen}")
            status.update(f"waiting for {what}: {seen} ({elapsed:.0f}s)")
            time.sleep(interval)


class Sample:
    def __init__(self, cluster: LocalCluster, repo: Path, namespace: str, console: Console) -> None:
        self.cluster = cluster
        self.repo = repo
        self.namespace = namespace
        self.console = console

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.cluster.kubectl("-n", self.namespace, *args, input=input)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = json.loads(self.kubectl("get", kind, name, "-o", "json"))
        except CommandError as exc:
            if "NotFound" in str(exc):
                return None
            raise
        return result

    def apply(self, text: str) -> None:
        self.kubectl("apply", "--server-side", "--field-manager=recluster-local", "--force-conflicts",
                     "-f", "-", input=text)

    def install_operator(self, timeout: float) -> None:
        ns = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        self.cluster.kubectl("apply", "--server-side", "--field-manager=recluster-local", "-f", "-", input=ns)
        self.apply((self.repo / "deploy" / BUNDLE_FILE).read_text())
        self.console.print(f"[green]✓[/green] operator installed from deploy/{BUNDLE_FILE} "
                           f"in namespace {self.namespace}")
        self.apply(admission_manifests(self.repo / "deploy", self.namespace))
        self.console.print("[green]✓[/green] admission webhook configured (deploy/admission)")
        wait("the operator pod to be ready", self._operator_ready, timeout, self.console)

    def _operator_ready(self) -> tuple[bool | None, str]:
        deployment = self.get("deployment", OPERATOR_DEPLOYMENT) or {}
        status = deployment.get("status") or {}
        ready, wanted = status.get("readyReplicas") or 0, (deployment.get("spec") or {}).get("replicas", 1)
        current = status.get("updatedReplicas") or 0
        done = ready >= wanted and current >= wanted and status.get("observedGeneration") == (
            deployment.get("metadata") or {}).get("generation")
        return (True if done else None), f"{ready}/{wanted} ready"

    def apply_examples(self, timeout: float) -> tuple[str, str]:
        rec_text = (self.repo / "examples" / SAMPLE_REC_FILE).read_text()
        redb_text = (self.repo / "examples" / SAMPLE_REDB_FILE).read_text()

        def applied(text: str) -> Callable[[], tuple[bool | None, str]]:
            def attempt() -> tuple[bool | None, str]:
                self.apply(text)  # refused until the webhook serves with the CA the operator published
                return True, "applied"
            return attempt

        wait(f"examples/{SAMPLE_REC_FILE} to be accepted", applied(rec_text), timeout, self.console)
        wait(f"examples/{SAMPLE_REDB_FILE} to be accepted", applied(redb_text), timeout, self.console)
        return _name(rec_text), _name(redb_text)

    def wait_running(self, rec: str, redb: str, timeout: float) -> None:
        def rec_running() -> tuple[bool | None, str]:
            status = (self.get("rec", rec) or {}).get("status") or {}
            state = status.get("state") or "no status yet"
            return (True if state == "Running" else None), f"state {state}"

        def redb_active() -> tuple[bool | None, str]:
            status = (self.get("redb", redb) or {}).get("status") or {}
            value = status.get("status") or "no status yet"
            return (True if value == "active" else None), f"status {value}"

        wait(f"REC {rec} to be Running", rec_running, timeout, self.console, interval=3)
        wait(f"REDB {redb} to be active", redb_active, timeout, self.console, interval=2)

    def connection(self, rec: str, redb: str) -> Connection:
        status = (self.get("redb", redb) or {}).get("status") or {}
        endpoint = (status.get("internalEndpoints") or [{}])[0]
        host, port = str(endpoint.get("host") or ""), int(endpoint.get("port") or 0)
        if not host or not port:
            raise SampleError(f"REDB {redb} is active but has no internalEndpoints in its status")
        service = self.get("service", host.split(".")[0]) or {}
        ui = self.get("service", f"{rec}-ui") or {}
        rec_secret = self.get("secret", rec) or {}
        username = base64.b64decode((rec_secret.get("data") or {}).get("username", "")).decode()
        return Connection(
            namespace=self.namespace,
            kubeconfig=self.cluster.kubeconfig_path,
            rec=rec,
            redb=redb,
            db_service=host,
            db_address=str((service.get("spec") or {}).get("clusterIP") or host),
            db_port=port,
            db_secret=f"redb-{redb}",
            console_url=f"https://{(ui.get('spec') or {}).get('clusterIP') or f'{rec}-ui'}:8443",
            console_secret=rec,
            console_username=username,
        )

    def secret_value(self, secret: str, key: str) -> str:
        data = (self.get("secret", secret) or {}).get("data") or {}
        return base64.b64decode(data.get(key, "")).decode()


def _name(text: str) -> str:
    """metadata.name of an example manifest (the first document)."""
    try:
        document = yaml.safe_load(text)
        return str(document["metadata"]["name"])
    except (yaml.YAMLError, TypeError, KeyError) as exc:
        raise SampleError(f"an example without metadata.name ({type(exc).__name__})") from exc


def install_sample(cluster: LocalCluster, repo: Path, namespace: str, console: Console,
                   timeout: float = 600) -> tuple[Sample, Connection]:
    sample = Sample(cluster, repo, namespace, console)
    sample.install_operator(timeout)
    rec, redb = sample.apply_examples(timeout=120)
    sample.wait_running(rec, redb, timeout)
    return sample, sample.connection(rec, redb)


def connection_text(sample: Sample, conn: Connection, kubectl: str, show_secrets: bool) -> str:
    """How to connect, for the terminal. Secret values appear only when asked for (`show_secrets`,
    an interactive terminal); otherwise the command that reads them, so logs never hold them."""

    def read(secret: str) -> str:
        jsonpath = "jsonpath='{.data.password}'"
        return f"{kubectl} -n {conn.namespace} get secret {secret} -o {jsonpath} | base64 -d"

    def password(secret: str) -> str:
        return sample.secret_value(secret, "password") if show_secrets else read(secret)

    auth = sample.secret_value(conn.db_secret, "password") if show_secrets else f"$({read(conn.db_secret)})"
    rows = [
        ("kubectl", f"{kubectl} -n {conn.namespace} get rec,redb,pods"),
        ("kubeconfig", str(conn.kubeconfig)),
        ("database", f"{conn.db_address}:{conn.db_port}  ({conn.db_service} inside the cluster; "
                     "the host routes the Service range)"),
        ("database password", password(conn.db_secret)),
        ("try it", f'REDISCLI_AUTH="{auth}" redis-cli -h {conn.db_address} -p {conn.db_port} PING'),
        ("console", f"{conn.console_url}  (user {conn.console_username}; "
                    "a certificate of the cluster's own CA)"),
        ("console password", password(conn.console_secret)),
        ("stop", "bin/recluster local down"),
    ]
    title = (f"The local cluster runs the operator, REC {conn.rec} and REDB {conn.redb} "
             f"in namespace {conn.namespace}.")
    return "\n".join(["", title, *(f"  {label + ':':<19}{value}" for label, value in rows), ""])
