"""A private containerd: its own config, root, state and socket, started as a recorded process.

The local cluster runs one per node (each in the node's network namespace, runc, cgroupfs, the CNI
plugins from /usr/lib/cni and a CNI config dir of its own); tests run one to try the project image.
The machine's containerd service is never used. `containerd_config` is pure.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# where the CRI plugin mounts pod network namespaces: under the instance's state
CRI_NETNS = Path("io.containerd.grpc.v1.cri") / "netns"

RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
CRI_PLUGIN = "io.containerd.grpc.v1.cri"
# Snapshotters that cannot work here (no btrfs/zfs/devmapper/aufs): disabled so they neither fail
# noisily at start nor get picked.
UNUSED_PLUGINS = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
)


def _q(value: str | Path) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these values)."""
    return json.dumps(str(value))


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def containerd_config(
    root: Path,
    state: Path,
    socket: Path,
    *,
    snapshotter: str = "overlayfs",
    runc: str = RUNC,
    cri: bool = True,
    cni_bin_dir: str = CNI_BIN_DIR,
    cni_conf_dir: Path | None = None,
    pause_image: str = PAUSE_IMAGE,
    disabled_plugins: Sequence[str] = (),
    log_level: str = "info",
) -> str:
    """containerd 1.6 config (version 2) for one private instance.

    Everything it writes lives under `root` and `state`: the runc state dir (normally the shared
    /run/containerd/runc) and the opt dir (normally /opt/containerd) are moved there too, so two
    instances never share a file. Cgroups are cgroupfs (`SystemdCgroup = false`; the machine runs no
    systemd and its cgroups are v1). With `cri`, the CRI plugin is configured for a kubelet: runc
    as the default runtime, CNI plugins from `cni_bin_dir` and configs from `cni_conf_dir`
    (default `<root>/cni/net.d`). Without it, the CRI plugin is disabled (enough for `ctr`)."""
    disabled = list(dict.fromkeys([*UNUSED_PLUGINS, *disabled_plugins, *(() if cri else (CRI_PLUGIN,))]))
    runc_root = state / "runc"
    lines = [
        "version = 2",
        f"root = {_q(root)}",
        f"state = {_q(state)}",
        f"disabled_plugins = {_toml_list(disabled)}",
        "",
        "[grpc]",
        f"  address = {_q(socket)}",
        "",
        "[ttrpc]",
        f"  address = {_q(str(socket) + '.ttrpc')}",
        "",
        "[debug]",
        '  address = ""',
        f"  level = {_q(log_level)}",
        "",
        "[metrics]",
        '  address = ""',
        "",
        '[plugins."io.containerd.internal.v1.opt"]',
        f"  path = {_q(root / 'opt')}",
        "",
        '[plugins."io.containerd.runtime.v2.task"]',
        '  platforms = ["linux/amd64"]',
        "",
        '[plugins."io.containerd.service.v1.tasks-service"]',
        '  rdt_config_file = ""',
    ]
    if cri:
        conf_dir = cni_conf_dir if cni_conf_dir is not None else root / "cni" / "net.d"
        cri_table = f'[plugins."{CRI_PLUGIN}"'
        lines += [
            "",
            f"{cri_table}]",
            f"  sandbox_image = {_q(pause_image)}",
            "  enable_selinux = false",
            "  restrict_oom_score_adj = true",
            "  disable_apparmor = true",
            "  enable_unprivileged_ports = true",
            # pod network namespaces under our state (<state>/io.containerd.grpc.v1.cri/netns), not the
            # machine-wide /var/run/netns, so stopping this containerd unmounts every one of them
            # (containerd 1.6's key; an unknown key is ignored without a word: `netns_mounts_under`,
            # used before, left hundreds of pod namespaces in /var/run/netns)
            "  netns_mounts_under_state_dir = true",
            "",
            f"{cri_table}.containerd]",
            f"  snapshotter = {_q(snapshotter)}",
            '  default_runtime_name = "runc"',
            "",
            f"{cri_table}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            "",
            f"{cri_table}.containerd.runtimes.runc.options]",
            f"  BinaryName = {_q(runc)}",
            f"  Root = {_q(runc_root)}",
            "  SystemdCgroup = false",
            "",
            f"{cri_table}.cni]",
            f"  bin_dir = {_q(cni_bin_dir)}",
            f"  conf_dir = {_q(conf_dir)}",
            "  max_conf_num = 1",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# running one


@dataclass(frozen=True)
class Containerd:
    """A running private containerd: where it lives and the pid we started it with."""

    home: Path
    pid: int
    snapshotter: str

    @property
    def socket(self) -> Path:
        return self.home / "containerd.sock"

    @property
    def root(self) -> Path:
        return self.home / "root"

    @property
    def state(self) -> Path:
        return self.home / "state"

    @property
    def pid_file(self) -> Path:
        return self.home / "containerd.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "containerd.log"

    def ctr(self, namespace: str = "k8s.io") -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", namespace]


def start_containerd(
    home: Path,
    *,
    snapshotter: str = "overlayfs",
    cri: bool = False,
    netns: str | None = None,
    timeout: float = 60.0,
    **config: object,
) -> Containerd:
    """Write `<home>/config.toml` and start containerd with it in its own session (in `netns` if
    given), recording its pid in `<home>/containerd.pid`. Waits until it answers on its socket (or
    raises, naming its log, after `timeout` seconds)."""
    home.mkdir(parents=True, exist_ok=True)
    root, state, socket = home / "root", home / "state", home / "containerd.sock"
    config_file = home / "config.toml"
    config_file.write_text(
        containerd_config(root, state, socket, snapshotter=snapshotter, cri=cri, **config)  # type: ignore[arg-type]
    )
    argv = ["containerd", "--config", str(config_file)]
    if netns is not None:
        # the network namespace only: `ip netns exec` would also make a private mount namespace
        argv = ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]
    with (home / "containerd.log").open("ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Containerd(home, proc.pid, snapshotter)
    running.pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            running.pid_file.unlink(missing_ok=True)
            raise RuntimeError(
                f"containerd exited with status {proc.returncode}; see {running.log_file}:\n"
                + _tail(running.log_file)
            )
        if socket.exists():
            probe = subprocess.run([*running.ctr(), "version"], capture_output=True, timeout=30, check=False)
            if probe.returncode == 0:
                return running
        if time.monotonic() > deadline:
            stop_containerd(home)
            raise RuntimeError(
                f"containerd did not answer on {socket} within {timeout:.0f}s; see "
                f"{running.log_file}:\n" + _tail(running.log_file)
            )
        time.sleep(0.2)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def shim_pids(home: Path) -> list[int]:
    """Pids of the runc shims of this containerd: from the shim.pid files it keeps in its state, and
    the shims started with this containerd's own socket as `-address` (the CRI's grouped pod shims
    write no shim.pid). The socket path is ours alone, so no other containerd's shim matches."""
    pids = set()
    for pid_file in (home / "state").glob("io.containerd.runtime.v2.task/*/*/shim.pid"):
        with contextlib.suppress(OSError, ValueError):
            pids.add(int(pid_file.read_text().strip()))
    socket = str(home / "containerd.sock")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().split(b"\0")
            at = argv.index(b"-address") + 1 if b"-address" in argv else len(argv)
            if at < len(argv) and argv[at].decode(errors="replace") == socket:
                pids.add(int(cmdline.parent.name))
    return sorted(pids)


def stop_containerd(home: Path, *, timeout: float = 20.0) -> None:
    """Stop the containerd recorded in `<home>/containerd.pid` with everything it runs: first its
    tasks (killed and deleted through containerd, so runc removes their cgroups and rootfs mounts;
    the container records stay, as after a reboot), then containerd and its shims (by their recorded
    pids: SIGTERM, then SIGKILL after `timeout`); a container whose shim had to be killed is killed
    through its init process (the shim's child), so nothing it ran outlives it. Last, whatever is
    still mounted under `home` is unmounted. Does nothing if nothing is recorded; safe to call twice."""
    pid_file = home / "containerd.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = None
    alive = pid is not None and _is_containerd(pid)
    if alive:
        _delete_tasks(home)
    shims = [p for p in shim_pids(home) if _is_shim(p)]
    if alive and pid is not None:
        _terminate([pid], timeout)
    # a container's init is its shim's child; killing it ends the container's pid namespace
    inits = [child for shim in shims for child in _children(shim)]
    for init in inits:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_alive(init) for init in inits) and time.monotonic() < deadline:
        time.sleep(0.05)
    _terminate(shims, timeout)
    pid_file.unlink(missing_ok=True)
    unmount_under(home)


def _delete_tasks(home: Path) -> None:
    """Kill and delete every task in every namespace of the containerd at `<home>/containerd.sock`
    (best effort: a containerd that does not answer is left to the pid-based steps)."""
    ctr = ["ctr", "--address", str(home / "containerd.sock")]

    def call(*args: str) -> str:
        try:
            result = subprocess.run([*ctr, *args], capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return ""
        return result.stdout if result.returncode == 0 else ""

    for namespace in call("namespaces", "list", "--quiet").split():
        for task in call("--namespace", namespace, "tasks", "list", "--quiet").split():
            call("--namespace", namespace, "tasks", "kill", "--all", "--signal", "SIGKILL", task)
            call("--namespace", namespace, "tasks", "delete", "--force", task)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _is_containerd(pid: int) -> bool:
    # a recorded pid, checked to still be a containerd before it is signalled (pids get reused)
    return _comm(pid) == "containerd"


def _is_shim(pid: int) -> bool:
    return _comm(pid).startswith("containerd-shim")


def _terminate(pids: Sequence[int], timeout: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat[stat.rindex(")") + 2 :].startswith("Z"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


# --------------------------------------------------------------------------------------------------
# mounts


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path` (from /proc/self/mountinfo), deepest first."""
    base = os.path.realpath(path)
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = _unescape(line.split()[4])
            if point == base or point.startswith(base.rstrip("/") + "/"):
                found.append(Path(point))
    return sorted(set(found), key=lambda p: (len(p.parts), str(p)), reverse=True)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def unmount_under(path: Path) -> None:
    """Unmount everything mounted at or below `path`, deepest first (lazily if busy)."""
    for _ in range(5):
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            result = subprocess.run(["umount", str(point)], capture_output=True, check=False, timeout=60)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False, timeout=60)
    remaining = mounts_under(path)
    if remaining:
        raise RuntimeError(f"could not unmount {', '.join(map(str, remaining))}")
