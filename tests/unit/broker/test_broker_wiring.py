"""The broker accepts exactly what the operator's Deployment passes (env names, port, command),
reads credentials only from files, and keeps its records in sqlite across a reopen."""

from __future__ import annotations

from pathlib import Path

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


def test_a_bad_catalog_stops_the_broker_before_it_listens(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "username").write_text("admin")
    (secret / "password").write_text("pw")
    bad = tmp_path / "plans.yaml"
    bad.write_text("plans:\n  - name: tiny\n    memory: lots\n")
    common = ["--api-url", "https://127.0.0.1:9443", "--credentials-dir", str(secret),
              "--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(broker, [*common, "--catalog", str(bad)])
    assert result.exit_code == 2
    assert "'plans[0].memory'" in result.output
    result = CliRunner().invoke(broker, [*common, "--tls-cert", str(bad)])
    assert result.exit_code == 2 and "--tls-key" in result.output
