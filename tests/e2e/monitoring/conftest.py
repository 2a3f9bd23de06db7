"""A real Prometheus (Debian's `prometheus` package, scripts/debian-packages.txt) scraping a REC of the
local cluster: a REC and a replicated REDB of their own in a namespace of their own, the operator on
the host (as the other e2e tests run it), and Prometheus on the host, bound to 127.0.0.1, its data in
a temporary directory, stopped by the pid it was started with. It scrapes the node pods' metrics
endpoints at their pod IPs (the host reaches 198.18.0.0/15) over HTTPS, checking their certificate
against the REC's CA, and the operator's /metrics; it loads recluster's alerting rules from
install/alerts.py with `for` shortened to FOR."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from recluster.install.alerts import rules_text
from recluster.local.cluster import LocalCluster
from recluster.local.harness import (
    NODE_SELECTOR,
    OperatorProcess,
    apply_redb,
    eventually,
    free_port,
    get,
    kubectl,
    operator_namespace,
    rec_manifest,
    redb_manifest,
    secret_data,
    start_operator,
    strip_finalizers,
    wait_active,
    wait_state,
)

FOR = "10s"  # every alert's `for` in this test (the shipped rules say minutes)
INTERVAL = "2s"  # scrape and rule evaluation
METRICS_PORT = 8070


class PrometheusProcess:
    """`prometheus` on 127.0.0.1 with this configuration and rules; its HTTP API read with urllib."""

    def __init__(self, workdir: Path, config: dict[str, Any], rules: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        (workdir / "rules.yaml").write_text(rules)
        config = {**config, "rule_files": [str(workdir / "rules.yaml")]}
        (workdir / "prometheus.yaml").write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: bin/setup installs it (scripts/debian-packages.txt)"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={workdir / 'prometheus.yaml'}",
                 f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        eventually("Prometheus ready", self._ready, timeout=60)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}{query}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the pid it was started with, never a name
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Monitored:
    cluster: LocalCluster
    namespace: str
    operator: OperatorProcess
    prometheus: PrometheusProcess
    node_targets: dict[str, str]  # node pod name -> its scrape target (pod IP:8070)


def node_targets(cluster: LocalCluster, namespace: str) -> dict[str, str]:
    pods = get(cluster, namespace, "pods", "-l", NODE_SELECTOR)["items"]
    return {p["metadata"]["name"]: f"{p['status']['podIP']}:{METRICS_PORT}" for p in pods}


def scrape_config(workdir: Path, namespace: str, nodes: dict[str, str], operator_port: int,
                  ca_pem: str) -> dict[str, Any]:
    (workdir / "ca.crt").write_text(ca_pem)
    return {
        "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
        "scrape_configs": [
            {
                "job_name": "recluster-nodes",
                "scheme": "https",
                # the pod IPs are not in the nodes' certificate; the REC's name is
                "tls_config": {"ca_file": str(workdir / "ca.crt"),
                               "server_name": f"rec.{namespace}.svc.cluster.local"},
                "static_configs": [{"targets": sorted(nodes.values())}],
            },
            {"job_name": "recluster-operator",
             "static_configs": [{"targets": [f"127.0.0.1:{operator_port}"]}]},
        ],
    }


@pytest.fixture(scope="module")
def monitored(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    workdir = tmp_path_factory.mktemp("monitoring")
    with operator_namespace(local_cluster) as namespace:
        operator = start_operator(local_cluster, namespace, workdir)
        prometheus = None
        try:
            kubectl(local_cluster, "-n", namespace, "apply", "-f", "-", input=json.dumps(rec_manifest()))
            wait_state(local_cluster, namespace, "Running", timeout=900)
            assert apply_redb(local_cluster, namespace, redb_manifest("watched", replication=True)) == ""
            wait_active(local_cluster, namespace, "watched")
            tls = secret_data(local_cluster, namespace, "rec-tls")
            assert tls is not None
            nodes = node_targets(local_cluster, namespace)
            assert len(nodes) == 3
            config = scrape_config(workdir, namespace, nodes, operator.http_port, tls["ca.crt"])
            prometheus = PrometheusProcess(workdir, config, rules_text(for_=FOR))
            yield Monitored(local_cluster, namespace, operator, prometheus, nodes)
        finally:
            if prometheus is not None:
                prometheus.stop()
            kubectl(local_cluster, "-n", namespace, "delete", "redb", "--all", "--wait=false", check=False)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and kubectl(
                    local_cluster, "-n", namespace, "get", "redb", "-o", "name", check=False).stdout.strip():
                time.sleep(1)
            operator.stop()
            strip_finalizers(local_cluster, namespace, "redb")
