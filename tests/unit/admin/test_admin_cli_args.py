"""Bad arguments of `kubectl recluster` are refused before anything is read, with a message that names
the argument and the rule, and a non-zero exit; kubectl's options work before or after the command;
a kubeconfig problem is said plainly (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from recluster.admin.cli import admin

pytestmark = pytest.mark.unit


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(admin, list(args), prog_name="kubectl recluster")
    return result.exit_code, result.output


@pytest.mark.parametrize(("args", "says"), [
    (["status", "-n", "Bad_NS"], "Invalid value for '-n' / '--namespace': 'Bad_NS' is not a namespace name"),
    (["-n", "x" * 64, "status"], "is not a namespace name"),
    (["status", "-o", "yaml"], "Invalid value for '-o' / '--output': 'yaml' is not one of 'table', 'json'"),
    (["status", "My.REC"], "Invalid value for '[REC]': 'My.REC' is not a REC name"),
    (["failover", "db", "--timeout", "0"],
     "Invalid value for '--timeout': 0.0 is not in the range 1<=x<=3600"),
    (["failover"], "Missing argument 'DATABASE'"),
    (["failover", " "], "name a REDB, a database of the cluster or its uid"),
    (["logs", "-p", "redis"], "Invalid value for '-p' / '--process': 'redis' is not a process"),
    (["logs", "--since", "soon"], "Invalid value for '--since': 'soon' is not a duration"),
    (["logs", "--tail", "-1"], "Invalid value for '--tail'"),
    (["logs", "-f", "--previous"], "--follow and --previous exclude each other"),
    (["report", "--operator-namespace", "NS"], "Invalid value for '--operator-namespace'"),
    (["report", "--log-limit-bytes", "10"], "Invalid value for '--log-limit-bytes'"),
    (["connect", "db", "--redis-cli", "/nonexistent/redis-cli"], "is not an executable on PATH"),
    (["status", "--request-timeout", "0"], "Invalid value for '--request-timeout'"),
])
def test_bad_arguments_name_the_argument_and_the_rule(args: list[str], says: str) -> None:
    code, output = invoke(*args)
    assert code == 2, output
    assert says in " ".join(output.split()), output


def test_report_will_not_overwrite_a_file(tmp_path: Path) -> None:
    existing = tmp_path / "old.tar.gz"
    existing.write_text("x")
    code, output = invoke("report", "--out", str(existing))
    assert code == 2 and "exists: name a new file" in output
    other = tmp_path / "notes.txt"
    other.write_text("x")
    code, output = invoke("report", "--out", str(other))
    assert code == 2 and "a .tar.gz file to create, or a directory" in output


def test_a_missing_context_is_said_plainly(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: a\n"
                      "contexts:\n- name: a\n  context: {cluster: c}\n"
                      "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n")
    code, output = invoke("status", "--kubeconfig", str(config), "--context", "b")
    assert code == 1
    assert "kubeconfig: --context b: no such context" in output and "(known: a)" in output


def test_the_commands_and_kubectl_options_are_listed() -> None:
    code, output = invoke("--help")
    assert code == 0
    for command in ("connect", "failover", "logs", "report", "status"):
        assert command in output
    code, output = invoke("status", "--help")
    assert code == 0 and "--kubeconfig" in output and "--context" in output and "--namespace" in output
    assert "Usage: kubectl recluster status" in output
