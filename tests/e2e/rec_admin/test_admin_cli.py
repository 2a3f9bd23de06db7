"""`kubectl recluster` on the local cluster, against one REC with a replicated and a TLS database:
`status` says what the REST API says (GET /v1/nodes, /v1/bdbs, /v1/shards), also run as a kubectl
plugin; `connect` runs redis-cli with the password in its environment (directly, through the exec
tunnel, and over TLS with the database's CA); `failover` moves a replicated database's master while a
writer goes on (its gap is printed); `logs` filters a node's processes; `report` writes a bundle
with the expected files and no value of any Secret of the namespace."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.rec_admin.conftest import PLUGIN, REPLICATED, TLS, AdminEnv

from recluster.clients.cluster_api import ClusterApi
from recluster.clients.node_api import node_api
from recluster.clients.write_probe import FailoverWrites, probe_failover, server_on, try_write
from recluster.local.harness import eventually, get, node_pods, secret_data, service

pytestmark = pytest.mark.e2e


def rest(env: AdminEnv) -> ClusterApi:
    """The REST API of a node pod, checked against the REC's CA, as the operator reaches it."""
    creds = secret_data(env.cluster, env.namespace, "rec")
    tls = secret_data(env.cluster, env.namespace, "rec-tls")
    assert creds is not None and tls is not None
    ip = node_pods(env.cluster, env.namespace)[0]["status"]["podIP"]
    return node_api(ip, f"rec.{env.namespace}.svc", tls["ca.crt"], creds["username"], creds["password"])


Views = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def rest_views(env: AdminEnv) -> Views:
    """GET /v1/nodes, /v1/bdbs, /v1/shards."""
    async def read() -> Views:
        async with rest(env) as api:
            return await api.nodes(), await api.bdbs(), await api.shards()

    return asyncio.run(read())


def same_as_rest(status: dict[str, Any], views: Views) -> list[str]:
    """What `status -o json` says differently from the REST API (empty: the same)."""
    nodes, bdbs, shards = views
    pairs = [
        ("nodes", {n["uid"]: (n["address"], n["status"], n["shards"], n["masters"]) for n in status["nodes"]},
         {int(n["uid"]): (n["addr"], n["status"], len(n["shard_list"]), len(n["master_shards"]))
          for n in nodes}),
        ("databases", {d["uid"]: (d["name"], d["status"], d["port"], d["replication"], d["shards"])
                       for d in status["databases"]},
         {int(b["uid"]): (b["name"], b["status"], b["port"], b["replication"], len(b["shard_list"]))
          for b in bdbs}),
        ("shards", {s["uid"]: (s["bdb"], s["role"], s["node"], s["status"]) for s in status["shards"]},
         {int(s["uid"]): (int(s["bdb_uid"]), s["role"], int(s["node_uid"]), s["status"]) for s in shards}),
    ]
    return [f"{what}: status {mine} != REST {theirs}" for what, mine, theirs in pairs if mine != theirs]


def test_status_matches_the_rest_api(admin_env: AdminEnv) -> None:
    env = admin_env
    status: dict[str, Any] = {}
    differences: list[str] = []
    for _ in range(5):  # the two reads are moments apart: a change between them is retried
        status = env.cli_json("status")
        differences = same_as_rest(status, rest_views(env))
        if not differences and status["health"]["ok"]:
            break
        time.sleep(2)
    assert differences == []
    assert status["health"] == {"ok": True, "problems": []}, status["health"]
    cluster = status["cluster"]
    assert (cluster["name"], cluster["state"], cluster["ready"]) == ("rec", "Running", True)
    assert cluster["readyNodes"] == 3 and len(status["nodes"]) == 3
    by_name = {d["name"]: d for d in status["databases"]}
    assert by_name[REPLICATED]["replication"] and by_name[REPLICATED]["redb"] == REPLICATED
    assert by_name[TLS]["tls"] and by_name[TLS]["redb"] == TLS
    masters = {s["bdb"]: s["pod"] for s in status["shards"] if s["role"] == "master"}
    for endpoint in status["endpoints"]:
        assert endpoint["pods"] == [masters[endpoint["bdb"]]] and endpoint["pointsAtMaster"], endpoint
    assert {e["service"] for e in status["endpoints"]} >= {REPLICATED, f"{REPLICATED}-headless", TLS}

    table = env.cli("status").stdout
    for text in ("CLUSTER rec", "NODES", "DATABASES", "SHARDS", "ENDPOINTS", "HEALTH: OK", REPLICATED, TLS):
        assert text in table, table
    # as a kubectl plugin: kubectl finds kubectl-recluster on PATH
    plugin = env.cluster.kube_dir() / "kubectl"
    result = subprocess.run([str(plugin), "recluster", "status", "-n", env.namespace, "-o", "json"],
                            capture_output=True, text=True, env=env.env(), timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cluster"]["name"] == "rec"


def test_connect_directly_through_the_tunnel_and_over_tls(admin_env: AdminEnv) -> None:
    env = admin_env
    password = (secret_data(env.cluster, env.namespace, f"redb-{REPLICATED}") or {})["password"]
    assert env.cli("connect", REPLICATED, "--", "SET", "admin-key", "v1").stdout.strip() == "OK"
    assert env.cli("--tunnel", "connect", REPLICATED, "--", "GET", "admin-key").stdout.strip() == "v1"
    shown = json.loads(env.cli("connect", REPLICATED, "--dry-run").stdout)
    assert shown["via"] == f"Service {REPLICATED}" and password not in json.dumps(shown)
    assert shown["env"] == {"REDISCLI_AUTH": "<hidden>"}

    assert env.cli("connect", TLS, "--", "PING").stdout.strip() == "PONG"
    shown = json.loads(env.cli("connect", TLS, "--dry-run").stdout)
    assert "--tls" in shown["argv"] and "--cacert" in shown["argv"]
    assert shown["argv"][shown["argv"].index("--sni") + 1] == f"{TLS}.{env.namespace}.svc"
    assert env.cli("--tunnel", "connect", TLS, "--", "PING").stdout.strip() == "PONG"

    missing = env.cli("connect", "no-such-db", "--", "PING", check=False)
    assert missing.returncode == 1 and "no database 'no-such-db'" in missing.stderr


def test_failover_moves_the_master_and_a_writer_continues(admin_env: AdminEnv) -> None:
    env = admin_env
    password = (secret_data(env.cluster, env.namespace, f"redb-{REPLICATED}") or {})["password"]
    svc = service(env.cluster, env.namespace, REPLICATED)
    assert svc is not None
    host, port = svc["spec"]["clusterIP"], int(svc["spec"]["ports"][0]["port"])
    old = eventually("the master through the Service", lambda: server_on(host, port, password), timeout=30)
    before = env.cli_json("status")
    old_master = next(s for s in before["shards"] if s["db"] == REPLICATED and s["role"] == "master")

    writes: list[FailoverWrites] = []
    started = time.monotonic()
    writer = threading.Thread(target=lambda: writes.append(
        probe_failover(host, port, password, old, started, "admin-failover", timeout=90, tail=1.0)))
    writer.start()
    try:
        result = env.cli_json("failover", REPLICATED, "--timeout", "90")
    finally:
        writer.join(timeout=120)
    print(f"failover: {result}")
    print(f"writer through Service {REPLICATED}: {writes[0].summary()}")
    assert result["oldMaster"]["node"] == old_master["node"]
    assert result["newMaster"]["node"] != old_master["node"]
    assert result["servicesSeconds"] is not None  # the Services lead to the new master
    assert writes[0].first_new is not None, writes[0].summary()
    assert writes[0].gap_so_far(time.monotonic()) < 30
    # the writer goes on: every write after the failover is taken by the new master
    for n in range(10):
        taken = try_write(host, port, password, f"admin-after-{n}")
        assert not isinstance(taken, str), taken
        assert taken.server.role == "master" and taken.server.run_id != old.run_id
    after = env.cli_json("status")
    master = next(s for s in after["shards"] if s["db"] == REPLICATED and s["role"] == "master")
    assert master["node"] == result["newMaster"]["node"]

    refused = env.cli("failover", TLS, check=False)  # one shard: nothing to fail over to
    assert refused.returncode == 1 and "has no replica" in refused.stderr


def test_logs_of_a_node_and_of_the_rec_by_process(admin_env: AdminEnv) -> None:
    env = admin_env
    pod = node_pods(env.cluster, env.namespace)[0]["metadata"]["name"]
    every = env.cli("logs", pod, "--tail", "2000").stdout.splitlines()
    assert any(line.startswith("[sentinel] ") for line in every)
    assert any(not line.startswith("[") for line in every)  # the daemon's own
    sentinel = env.cli("logs", pod, "-p", "sentinel", "--tail", "2000").stdout.splitlines()
    assert sentinel and all(line.startswith("[sentinel] ") for line in sentinel)
    shards = env.cli("logs", "rec", "-p", "shards", "--tail", "500").stdout.splitlines()
    assert shards and all(line.startswith("[rec-") and "] [shard of bdb " in line for line in shards)
    # -f: lines as they come; here until the command is stopped
    with subprocess.Popen([str(PLUGIN), "-n", env.namespace, "logs", pod, "-f", "--tail", "3"], env=env.env(),
                          stdout=subprocess.PIPE, text=True) as follow:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        follow.terminate()
    assert first.strip()
    bad = env.cli("logs", "no-such-pod", check=False)
    assert bad.returncode == 1 and "neither a node pod nor a REC" in bad.stderr


def test_report_holds_the_expected_files_and_no_secret_value(admin_env: AdminEnv, tmp_path: Path) -> None:
    env = admin_env
    out = tmp_path / "bundle.tar.gz"
    printed = env.cli("report", "--out", str(out)).stdout
    assert str(out) in printed
    with tarfile.open(out) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode(  # type: ignore[union-attr]
            errors="replace") for m in tar.getmembers() if m.isfile()}
    pods = [p["metadata"]["name"] for p in node_pods(env.cluster, env.namespace)]
    expected = ["summary.json", "status.txt", "status.json", "README.txt", "kubernetes/rec.json",
                "kubernetes/redbs.json", "kubernetes/pods.json", "kubernetes/statefulsets.json",
                "kubernetes/services.json", "kubernetes/events.json", "kubernetes/events.txt",
                "kubernetes/secrets.json", "rest/cluster.json", "rest/nodes.json", "rest/bdbs.json",
                "rest/shards.json", *(f"logs/{p}/redis-enterprise-node.log" for p in pods)]
    assert [name for name in expected if name not in files] == []
    summary = json.loads(files["summary.json"])
    print(f"report: {len(files)} files, not collected: {summary['errors']}")
    bdbs = json.loads(files["rest/bdbs.json"])
    assert {REPLICATED, TLS} <= {b["name"] for b in bdbs}  # the REC is shared with other e2e tests
    assert {b["authentication_redis_pass"] for b in bdbs if b["name"] in (REPLICATED, TLS)} == {"<redacted>"}
    assert any(name.startswith("logs/rec-services-rigger-") for name in files)

    # every value of every Secret of the namespace, base64-decoded, as is, JSON-escaped and base64
    # (values shorter than 6 characters, ports, would match by chance and are no secrets)
    secrets = get(env.cluster, env.namespace, "secrets")["items"]
    values = {f"{s['metadata']['name']}/{key}": base64.b64decode(v).decode(errors="replace")
              for s in secrets for key, v in (s.get("data") or {}).items()}
    searched = {key: value for key, value in values.items() if len(value) >= 6}
    wanted = {"rec/password", "rec-tls/tls.key", f"redb-{REPLICATED}/password", f"redb-{TLS}/password"}
    assert wanted <= set(searched), sorted(searched)
    leaks = [f"{key} in {name}" for key, value in searched.items() for name, text in files.items()
             for form in {value, json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode()}
             if form in text]
    print(f"searched {sum(map(len, files.values()))} characters for {len(searched)} secret values")
    assert leaks == []
