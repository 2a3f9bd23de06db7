"""The broker accepts exactly what the operator's Deployment passes (env names, port, command),
reads credentials only from files, and keeps its records in sqlite across a reopen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from recluster.api import RedisEnterpriseCluster
from recluster.broker.cli import broker, load_catalog_config, read_credentials
from recluster.broker.models import Binding, Instance, Operation
from recluster.broker.store import Store
from recluster.cli import SUBCOMMANDS
from recluster.operator.specs.broker import build_broker_deployment

pytestmark = pytest.mark.unit

REC = RedisEnterpriseCluster.model_validate({  # apiVersion and kind: the model's defaults
    "metadata": {"name": "rec", "namespace": "ns", "uid": "u-1"},
    "spec": {"nodes": 3, "serviceBrokerSpec": {"enabled": True}}})


def container() -> dict[str, object]:
    deployment = build_broker_deployment(REC, image="recluster:test")
    found: dict[str, object] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def test_the_deployment_serves_https_with_the_brokers_own_secrets() -> None:
    """The broker's certificate and credential come from Secrets of its own, mounted as files; the
    REC secret (the admin's credential) is mounted only for the broker's REST API calls."""
    pod: dict[str, Any] = build_broker_deployment(REC, image="recluster:test")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {item["name"]: item.get("value") for item in c["env"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    expected = (("RECLUSTER_BROKER_AUTH_DIR", "rec-service-broker", ["username", "password"]),
                ("RECLUSTER_BROKER_TLS_CERT", "rec-service-broker-tls", ["tls.crt", "tls.key"]))
    for variable, secret, keys in expected:
        path = Path(str(env[variable]))
        directory = str(path if variable.endswith("_DIR") else path.parent)
        volume = volumes[mounts[directory]]["secret"]
        assert volume["secretName"] == secret and [i["key"] for i in volume["items"]] == keys
    tls_dir = Path(str(env["RECLUSTER_BROKER_TLS_CERT"])).parent
    assert env["RECLUSTER_BROKER_TLS_KEY"] == str(tls_dir / "tls.key")
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    # bindings name the databases' Services as the rigger makes them, in the REC's namespace
    assert env["RECLUSTER_BROKER_SERVICE_DOMAIN"] == "ns.svc.cluster.local"
    assert (env["RECLUSTER_BROKER_DATABASE_SERVICE_TYPE"], env["RECLUSTER_BROKER_SERVICE_NAMING"]) == (
        "cluster_ip,headless", "bdb_name")


def test_every_env_the_operator_sets_is_an_option_of_the_broker() -> None:
    envvars = {param.envvar for param in broker.params if isinstance(param, click.Option)}
    env = container()["env"]
    assert isinstance(env, list)
    for item in env:
        assert item["name"] in envvars, f"the Deployment sets {item['name']}; `recluster broker` ignores it"


def test_command_and_port_match_the_deployment() -> None:
    c = container()
    assert c["command"] == ["recluster", "broker"]
    assert SUBCOMMANDS["broker"] == "recluster.broker.cli:broker"
    port = next(p for p in broker.params if p.name == "port")
    assert c["ports"] == [{"name": "broker", "containerPort": port.default, "protocol": "TCP"}]


def test_no_credential_is_taken_from_the_command_line() -> None:
    names = {opt for param in broker.params for opt in getattr(param, "opts", [])}
    assert not [n for n in names if "password" in n or "username" in n]


def test_credentials_are_read_from_a_secret_directory(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("admin\n")
    (tmp_path / "password").write_text("s3cret-value\n")
    creds = read_credentials(tmp_path, "--auth-dir")
    assert (creds.username, creds.password) == ("admin", "s3cret-value")
    assert "s3cret-value" not in repr(creds)
    assert creds.matches("admin", "s3cret-value") and not creds.matches("admin", "s3cret")
    (tmp_path / "password").write_text("")
    with pytest.raises(click.UsageError, match="is empty"):
        read_credentials(tmp_path, "--auth-dir")
    with pytest.raises(click.UsageError, match="not a directory"):
        read_credentials(tmp_path / "username", "--auth-dir")


def test_store_keeps_records_across_a_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path)
    instance = Instance(id="i1", service_id="s", plan_id="p", bdb_name="osb-i1")
    first = Operation(id="op-1", instance_id="i1", kind="provision", started=1.0)
    store.save(instance=instance, operation=first)
    store.save(binding=Binding(instance_id="i1", id="b1", service_id="s", plan_id="p"))
    store.close()
    assert (tmp_path / "broker.sqlite3").stat().st_mode & 0o077 == 0

    store = Store(tmp_path)
    assert store.instance("i1") == instance
    assert [o.id for o in store.unfinished_operations()] == ["op-1"]
    store.save(operation=first.model_copy(update={"state": "succeeded"}))
    store.save(operation=Operation(id="op-2", instance_id="i1", kind="update", started=2.0))
    assert [o.id for o in store.operations_of("i1")] == ["op-2", "op-1"]
    assert [o.id for o in store.unfinished_operations()] == ["op-2"]
    assert store.binding("i1", "b1") is not None and store.binding("i2", "b1") is None
    store.save(delete_bindings_of="i1")
    assert store.bindings_of("i1") == []
    store.close()


def test_catalog_file_yaml_or_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "plans.yaml"
    yaml_file.write_text("plans:\n  - name: tiny\n    memory: 32MB\n")
    assert load_catalog_config(yaml_file) == {"plans": [{"name": "tiny", "memory": "32MB"}]}
    json_file = tmp_path / "plans.json"
    json_file.write_text('{"plans": [{"name": "tiny", "memory": "32MB"}]}')
    assert load_catalog_config(json_file) == {"plans": [{"name": "tiny", "memory": "32MB"}]}
    assert load_catalog_config(None) is None
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(click.UsageError, match="must be a mapping"):
        load_catalog_config(tmp_path / "list.yaml")


def secret_dir(path: Path, username: str, password: str) -> Path:
    path.mkdir()
    (path / "username").write_text(username)
    (path / "password").write_text(password)
    return path


def test_a_bad_start_stops_the_broker_before_it_listens(tmp_path: Path) -> None:
    bad = tmp_path / "plans.yaml"
    bad.write_text("plans:\n  - name: tiny\n    memory: lots\n")
    (tmp_path / "tls.crt").write_text("certificate")
    (tmp_path / "tls.key").write_text("key")
    api = ["--api-url", "https://127.0.0.1:9443", "--data-dir", str(tmp_path / "data"),
           "--credentials-dir", str(secret_dir(tmp_path / "admin", "admin", "admin-password"))]
    auth = ["--auth-dir", str(secret_dir(tmp_path / "auth", "broker", "broker-password"))]
    tls = ["--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key")]

    def refused(*args: str) -> str:
        result = CliRunner().invoke(broker, list(args), env={"RECLUSTER_BROKER_TLS_CERT": "",
                                                             "RECLUSTER_BROKER_TLS_KEY": "",
                                                             "RECLUSTER_BROKER_AUTH_DIR": ""})
        assert result.exit_code == 2, result.output
        return result.output

    assert "'plans[0].memory'" in refused(*api, *auth, *tls, "--catalog", str(bad))
    # HTTPS only: no certificate, no broker
    assert "--tls-cert" in refused(*api, *auth)
    assert "--tls-key" in refused(*api, *auth, "--tls-cert", str(tmp_path / "tls.crt"))
    assert "is not a file" in refused(*api, *auth, "--tls-cert", str(tmp_path), "--tls-key", str(bad))
    # its own credential for platforms: without it the broker does not fall back to the admin's
    assert "--auth-dir" in refused(*api, *tls)
    assert "--database-service-type" in refused(*api, *auth, *tls, "--database-service-type", "nodeport")
    assert "--service-naming" in refused(*api, *auth, *tls, "--service-naming", "random")
