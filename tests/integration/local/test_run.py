"""The local cluster's one command runner: real commands, real timeouts, real output files."""

from __future__ import annotations

import io
from pathlib import Path

import click
import pytest
from rich.console import Console

from recluster.local.cli import _reported
from recluster.local.run import CommandError, run

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Failed commands' output goes under the cache: keep it in this test's directory."""
    monkeypatch.setenv("RECLUSTER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_errors_name_the_command_its_last_lines_and_the_full_output() -> None:
    script = "for i in $(seq 1 40); do echo line-$i; done; echo oops >&2; exit 3"
    with pytest.raises(CommandError) as failed:
        run(["sh", "-c", script], timeout=30)
    message = str(failed.value)
    assert failed.value.returncode == 3
    assert "sh -c" in message and "exited with status 3" in message
    assert "line-40" in message and "oops" in message and "line-1\n" not in message
    assert failed.value.log is not None and str(failed.value.log) in message
    kept = failed.value.log.read_text()
    assert "line-1\n" in kept and "line-40" in kept and "oops" in kept


def test_a_timeout_kills_the_whole_process_group() -> None:
    with pytest.raises(CommandError, match=r"timed out after 1s") as failed:
        run(["sh", "-c", "echo started; sleep 60 & echo $! > /dev/stderr; wait"], timeout=1)
    assert failed.value.tail[0] == "started"
    child = Path(f"/proc/{int(failed.value.tail[1])}/status")
    # the background sleep went with its group (gone, or a zombie waiting for init to reap it)
    assert not child.exists() or "State:\tZ" in child.read_text()


def test_a_missing_tool_says_so() -> None:
    with pytest.raises(CommandError, match="is not installed"):
        run(["recluster-no-such-tool-here"], timeout=5)


def test_unchecked_failures_return_the_status_and_both_streams() -> None:
    result = run(["sh", "-c", "echo out; echo err >&2; exit 4"], timeout=10, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\n", "err\n")


def test_input_and_streamed_output() -> None:
    shown = io.StringIO()
    result = run(["sh", "-c", "cat; echo done >&2"], timeout=10, input="hello\n",
                 console=Console(file=shown, width=200), stream=True)
    assert result.stdout.splitlines() == ["hello", "done"]
    assert "hello" in shown.getvalue() and "done" in shown.getvalue()


def test_local_commands_report_an_unexpected_failure_with_its_traceback_file() -> None:
    with pytest.raises(click.ClickException) as failed, _reported("local up"):
        raise ValueError("no such thing")
    message = failed.value.message
    assert message.startswith("local up failed: ValueError: no such thing")
    log = Path(message.rsplit("full traceback: ", 1)[1])
    assert "Traceback" in log.read_text() and "no such thing" in log.read_text()


def test_local_commands_report_a_command_failure_with_its_tail() -> None:
    with pytest.raises(click.ClickException) as failed, _reported("local build"):
        run(["sh", "-c", "echo compiling; echo broken >&2; exit 2"], timeout=10)
    message = failed.value.message
    assert message.startswith("local build failed: command 'sh -c")
    assert "  | broken" in message and "full output: " in message


def test_a_cache_lock_held_elsewhere_is_waited_for_with_a_timeout_that_names_it(tmp_path: Path) -> None:
    from recluster.local.locks import locked

    shown = io.StringIO()
    console = Console(file=shown, width=200)
    lock = tmp_path / "kube.lock"
    gave_up = r"gave up after 1s waiting for another process: building Kubernetes"
    with (
        locked(lock, console, "building Kubernetes"),  # held elsewhere
        pytest.raises(CommandError, match=gave_up),
        locked(lock, console, "building Kubernetes", timeout=1),
    ):
        pass
    assert "waiting for another process: building Kubernetes" in shown.getvalue()
    with locked(lock, console, "building Kubernetes", timeout=1):  # released: taken at once
        pass
