"""The project image, built the way the local cluster builds it (debootstrap base, buildah, the repo's
Dockerfile) and run by a private containerd the way a node runs it.

The image is built from a snapshot of the repository's build inputs taken when this module starts
(other work may change the tree meanwhile) and cached in the user cache dir across runs, so a run
with unchanged sources reuses the archive. The containerd is this module's own: config, root, state
and socket under a temporary dir, started and stopped by its recorded pid."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from recluster.local.containerd import Containerd, mounts_under, start_containerd, stop_containerd
from recluster.local.images import (
    CONTEXT_DIRS,
    CONTEXT_FILES,
    archive_tags,
    default_tag,
    ensure_project_image,
    import_image,
    input_hash,
)
from recluster.local.paths import cache_dir

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTTER = "overlayfs"


def copy_build_inputs(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in CONTEXT_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    for top in CONTEXT_DIRS:
        shutil.copytree(
            src / top, dst / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        )
    return dst


@pytest.fixture(scope="module")
def repo_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_build_inputs(REPO, tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def tag(repo_snapshot: Path) -> str:
    return default_tag(repo_snapshot)


@pytest.fixture(scope="module")
def archive(repo_snapshot: Path, tag: str) -> Path:
    return ensure_project_image(repo_snapshot, cache_dir(), tag, console=Console(stderr=True))


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    home = tmp_path_factory.mktemp("containerd")
    try:
        yield start_containerd(home, snapshotter=SNAPSHOTTER, cri=False)
    finally:
        stop_containerd(home)
        assert not mounts_under(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def image(archive: Path, containerd: Containerd, tag: str) -> str:
    names = import_image(archive, containerd.socket, snapshotter=SNAPSHOTTER, console=Console(stderr=True))
    assert names == [tag]
    return tag


def run_in_image(containerd: Containerd, image: str, *args: str, timeout: float = 120) -> str:
    """`ctr run --rm` without network (a fresh network namespace with loopback only)."""
    name = f"rc-image-test-{uuid.uuid4().hex[:12]}"
    argv = [*containerd.ctr(), "run", "--rm", "--snapshotter", SNAPSHOTTER, image, name, *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_archive_is_named_as_the_operator_expects(archive: Path, tag: str) -> None:
    assert tag.startswith("docker.io/library/recluster:")
    assert archive_tags(archive) == [tag]


def test_import_is_idempotent(archive: Path, containerd: Containerd, image: str) -> None:
    quiet = Console(file=io.StringIO())
    assert import_image(archive, containerd.socket, snapshotter=SNAPSHOTTER, console=quiet) == [image]
    listed = subprocess.run(
        [*containerd.ctr(), "images", "list", "--quiet"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed.count(image) == 1


def test_runs_as_uid_1001(containerd: Containerd, image: str) -> None:
    assert run_in_image(containerd, image, "id", "-u").strip() == "1001"
    assert run_in_image(containerd, image, "id", "-g").strip() == "1001"


def test_the_engines_sentinel_and_cli(containerd: Containerd, image: str) -> None:
    """Redis 8.0 is the default engine, the sentinel and the cli; Redis 7.0 (for the databases made on
    it, and the configuration store) and Valkey 8.1 are the other engines (docs/image.md)."""
    assert run_in_image(containerd, image, "redis-server", "--version").startswith("Redis server v=8.0.")
    assert run_in_image(containerd, image, "redis-sentinel", "--version").startswith("Redis server v=8.0.")
    assert run_in_image(containerd, image, "redis-cli", "--version").startswith("redis-cli 8.0.")
    old = run_in_image(containerd, image, "/opt/engines/redis-7.0/bin/redis-server", "--version")
    assert old.startswith("Redis server v=7.0.")
    assert run_in_image(containerd, image, "valkey-server", "--version").startswith("Valkey server v=8.1.")
    env = run_in_image(containerd, image, "sh", "-c", "echo $RECLUSTER_NODE_CCS_SERVER")
    assert env.strip() == "/opt/engines/redis-7.0/bin/redis-server"


def test_entrypoint_is_the_cli(containerd: Containerd, image: str) -> None:
    # no args: ENTRYPOINT recluster + CMD --help
    default = run_in_image(containerd, image)
    assert "Usage: recluster" in default
    assert "Commands:" in default
    explicit = run_in_image(containerd, image, "/opt/recluster/bin/recluster", "--help")
    assert explicit == default
    version = run_in_image(containerd, image, "/opt/recluster/bin/recluster", "--version")
    assert version.startswith("recluster, version ")


def test_python_is_debians_313_in_the_venv(containerd: Containerd, image: str) -> None:
    out = run_in_image(
        containerd,
        image,
        "/opt/recluster/bin/python",
        "-c",
        "import sys, recluster; print(sys.version_info[:2], sys.prefix, recluster.__file__)",
    )
    assert out.startswith("(3, 13) /opt/recluster /opt/recluster/lib/python3.13/site-packages/recluster/")


def test_no_build_tools_or_pip(containerd: Containerd, image: str) -> None:
    tools = "gcc cc c++ g++ clang ld as make pip pip3"
    script = f"for c in {tools}; do command -v $c; done; ls /usr/lib/gcc 2>&-; true"
    assert run_in_image(containerd, image, "sh", "-c", script).strip() == ""


def test_no_build_context_leftovers(containerd: Containerd, image: str) -> None:
    paths = "/build /run/recluster-build-ca.crt /usr/sbin/policy-rc.d"
    script = f'for p in {paths}; do [ -e "$p" ] && echo "$p"; done; true'
    assert run_in_image(containerd, image, "sh", "-c", script).strip() == ""


def test_unchanged_inputs_are_a_cache_hit(repo_snapshot: Path, archive: Path, tag: str) -> None:
    before = archive.stat().st_mtime_ns
    quiet = io.StringIO()
    again = ensure_project_image(repo_snapshot, cache_dir(), tag, console=Console(file=quiet))
    assert again == archive
    assert archive.stat().st_mtime_ns == before
    assert quiet.getvalue() == ""  # no step ran: no build, no push


def test_a_changed_input_changes_the_key(repo_snapshot: Path, tmp_path: Path, tag: str) -> None:
    changed = copy_build_inputs(repo_snapshot, tmp_path / "repo")
    assert input_hash(changed, tag) == input_hash(repo_snapshot, tag)
    init = changed / "src/recluster/__init__.py"
    init.write_text(init.read_text() + "\n# changed\n")
    assert input_hash(changed, tag) != input_hash(repo_snapshot, tag)
    dockerfile = copy_build_inputs(repo_snapshot, tmp_path / "repo2") / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    assert input_hash(dockerfile.parent, tag) != input_hash(repo_snapshot, tag)


def test_redis_and_sentinel_run_as_1001_on_loopback(containerd: Containerd, image: str) -> None:
    """The engines start as the image's user with containerd's default rlimits, in the container's
    own network namespace (loopback only), and sentinel finds the master."""
    script = r"""
set -e
cd "$HOME"
redis-server --port 7001 --bind 127.0.0.1 --save '' --daemonize yes --logfile "$HOME/redis.log"
printf 'port 7002\nbind 127.0.0.1\nsentinel monitor db1 127.0.0.1 7001 1\n' > sentinel.conf
redis-sentinel sentinel.conf --daemonize yes --logfile "$HOME/sentinel.log"
for i in $(seq 1 50); do
  redis-cli -p 7002 sentinel get-master-addr-by-name db1 2>/dev/null | grep -q 7001 && break
  sleep 0.1
done
redis-cli -p 7001 ping
redis-cli -p 7002 sentinel get-master-addr-by-name db1 | tr '\n' ' '
echo
pid=$(redis-cli -p 7001 info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
stat -c %u "/proc/$pid"
"""
    out = run_in_image(containerd, image, "sh", "-c", script).split("\n")
    assert out[0] == "PONG"
    assert out[1].split() == ["127.0.0.1", "7001"]
    assert out[2] == "1001"


def test_native_snapshotter_fallback(archive: Path, tag: str, tmp_path: Path) -> None:
    """`native` (plain copies) works where overlayfs might not: import and run with it."""
    home = tmp_path / "ctd-native"
    try:
        native = start_containerd(home, snapshotter="native", cri=False)
        quiet = Console(file=io.StringIO())
        assert import_image(archive, native.socket, snapshotter="native", console=quiet) == [tag]
        name = f"rc-image-test-{uuid.uuid4().hex[:12]}"
        argv = [*native.ctr(), "run", "--rm", "--snapshotter", "native", tag, name, "id", "-u"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert (result.returncode, result.stdout.strip()) == (0, "1001"), result.stderr
    finally:
        stop_containerd(home)
        assert not mounts_under(home)
        shutil.rmtree(home, ignore_errors=True)


def _task_pid(ctd: Containerd, name: str) -> int:
    out = subprocess.run([*ctd.ctr(), "tasks", "list"], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[1]) for line in out.splitlines()[1:] if line.split()[0] == name)


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited process its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _cgroups(name: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/k8s.io/{name}") if p.is_dir()]


def test_stop_leaves_no_container_running(archive: Path, tag: str, tmp_path: Path) -> None:
    """Stopping a containerd stops what it runs: gracefully (tasks deleted through containerd, so
    their cgroups and mounts go too), and when containerd itself died first (its shims' children,
    the containers' init processes, are killed)."""
    home = tmp_path / "ctd-stop"
    names = [f"rc-image-test-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        ctd = start_containerd(home, cri=False)
        import_image(archive, ctd.socket, console=Console(file=io.StringIO()))
        run = [*ctd.ctr(), "run", "--detach", tag]
        subprocess.run([*run, names[0], "sleep", "600"], check=True, timeout=120, capture_output=True)
        init = _task_pid(ctd, names[0])
        stop_containerd(home)
        assert not _running(init)
        assert not _cgroups(names[0])
        assert not mounts_under(home)

        ctd = start_containerd(home, cri=False)
        subprocess.run([*run, names[1], "sleep", "600"], check=True, timeout=120, capture_output=True)
        init = _task_pid(ctd, names[1])
        os.kill(ctd.pid, signal.SIGKILL)  # the pid we recorded
        stop_containerd(home)
        assert not _running(init)
        assert not mounts_under(home)
    finally:
        stop_containerd(home)
        for name in names:  # without containerd, runc never deleted the second one's cgroups
            for cgroup in _cgroups(name):
                cgroup.rmdir()
        shutil.rmtree(home, ignore_errors=True)
