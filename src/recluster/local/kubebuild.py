"""Building the Kubernetes components (tools/kube) once per version and inputs.

The binary lands in the user's cache directory keyed by a hash of the Go module's files and the Go
toolchain, so a fresh clone on the same machine, and every later `local up`, finds it at once. A cold
build shows a progress bar over the packages `go build -v` reports and says how long it took."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recluster.local.locks import locked
from recluster.local.paths import cache_dir, repo_dir
from recluster.local.run import CommandError, run

COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
    "etcd",
)
MODULE_FILES = ("go.mod", "go.sum", "main.go")
BUILD_TIMEOUT = 75 * 60


def module_dir() -> Path:
    return Path(repo_dir()) / "tools" / "kube"


def kubernetes_version(module: Path | None = None) -> str:
    """The pinned k8s.io/kubernetes version, read from the module's go.mod (the one source)."""
    text = ((module or module_dir()) / "go.mod").read_text()
    match = re.search(r"^\s*k8s\.io/kubernetes\s+(v\d+\.\d+\.\d+)\s*$", text, re.MULTILINE)
    if match is None:
        raise CommandError("tools/kube/go.mod does not require k8s.io/kubernetes at a release")
    return match.group(1)


def ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    stamp = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in stamp.items()]
    return " ".join(flags)


def go_binary() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise CommandError("the Go toolchain is not installed (`go` not on PATH)")
    return go


def input_key(module: Path) -> str:
    digest = hashlib.sha256()
    for name in MODULE_FILES:
        digest.update(name.encode() + b"\0" + (module / name).read_bytes() + b"\0")
    digest.update(run([go_binary(), "version"]).stdout.encode())
    digest.update(ldflags(kubernetes_version(module)).encode())
    return digest.hexdigest()[:12]


def binary_dir(module: Path | None = None) -> Path:
    module = module or module_dir()
    return cache_dir() / "kube" / f"{kubernetes_version(module)}-{input_key(module)}"


def ensure_kube(console: Console | None = None, module: Path | None = None) -> Path:
    """Return the directory holding `kube` and a symlink per component, building it if needed."""
    module = module or module_dir()
    console = console or Console(stderr=True)
    target = binary_dir(module)
    binary = target / "kube"
    if not binary.exists():
        _build(module, binary, console)
    for component in COMPONENTS:
        link = target / component
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                link.symlink_to("kube")
    return target


def _build(module: Path, binary: Path, console: Console) -> None:
    version = kubernetes_version(module)
    build_go_binary(module, ".", binary, ldflags(version), console, f"Kubernetes {version}")


def build_go_binary(
    module: Path, package: str, binary: Path, link_flags: str, console: Console, what: str
) -> None:
    """`go build` one package of `module` into `binary` (static), with a progress bar over the
    packages it compiles; the binary appears only when the build succeeded."""
    with locked(binary.parent.with_name(binary.parent.name + ".lock"), console, f"building {what}"):
        if not binary.exists():  # else built by whoever held the lock
            _go_build(module, package, binary, link_flags, console, what)


def _go_build(module: Path, package: str, binary: Path, link_flags: str, console: Console, what: str) -> None:
    go = go_binary()
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false -mod=readonly"}
    console.print(f"[bold]Building {what}[/] from Go modules into {binary.parent} (once per version)")
    started = time.monotonic()
    run([go, "mod", "download"], cwd=str(module), env=env, timeout=20 * 60)
    packages = run([go, "list", "-deps", package], cwd=str(module), env=env, timeout=10 * 60).stdout.split()
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    argv = [go, "build", "-v", "-trimpath", "-ldflags", link_flags, "-o", str(partial), package]
    log_path = cache_dir() / "logs" / f"go-build-{binary.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []
    with log_path.open("w") as log, Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        log.write(f"$ {' '.join(argv)}\n")
        task = progress.add_task("compiling packages", total=len(packages))
        proc = subprocess.Popen(
            argv, cwd=module, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log_lines = [*log_lines[-40:], line.rstrip()]
            progress.advance(task)
            if time.monotonic() - started > BUILD_TIMEOUT:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise CommandError(f"building {what} did not finish within {BUILD_TIMEOUT // 60} min",
                                   argv=argv, tail=log_lines[-15:], log=log_path)
        code = proc.wait()
        progress.update(task, completed=len(packages))
    if code != 0:
        raise CommandError(f"building {what} failed: go build exited with status {code}",
                           argv=argv, returncode=code, tail=log_lines[-15:], log=log_path)
    partial.rename(binary)
    console.print(f"Built {what} in {time.monotonic() - started:.0f}s")


def module_binary(module: Path, package: str, name: str, console: Console, link_flags: str = "-s -w") -> Path:
    """A binary built from one of the repository's small Go modules (tools/pause, tools/coredns),
    cached under ~/.cache/recluster/go/<name>-<hash of the module's files and the toolchain>."""
    digest = hashlib.sha256()
    for path in sorted(module.glob("*")):
        if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(run([go_binary(), "version"]).stdout.encode() + link_flags.encode())
    binary = cache_dir() / "go" / f"{name}-{digest.hexdigest()[:12]}" / name
    if not binary.exists():
        build_go_binary(module, package, binary, link_flags, console, name)
    return binary
