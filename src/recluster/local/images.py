"""Container images for the local cluster, built on this machine (no registry is reachable).

1. `ensure_base_rootfs`: a Debian rootfs from `debootstrap --variant=minbase`, cached, imported into
   our private buildah storage as `docker.io/library/debian:bookworm-slim` (the Dockerfile's FROM).
2. `ensure_project_image`: the repository's Dockerfile built with buildah on that base, written to a
   docker-archive tar, rebuilt only when a content hash of its inputs changes.
3. `import_image`: the archive imported into a containerd (every node's, in the local cluster).

Buildah keeps its state under `<cache>/buildah` (overlay storage driver, runc), not in the machine's
/var/lib/containers, so nothing here touches another user of buildah or podman.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tarfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from recluster.local.containerd import unmount_under
from recluster.local.locks import locked
from recluster.local.run import CommandError, run

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
SUITE = "bookworm"
VARIANT = "minbase"
# extra packages for debootstrap --include (none: Debian's slim image has none either)
BASE_PACKAGES: tuple[str, ...] = ()
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Bump when the way the rootfs is prepared changes, so cached rootfs are rebuilt.
BASE_RECIPE = "2"

RUNC = "/usr/sbin/runc"
# The machine lacks CAP_SYS_RESOURCE: RUN steps must keep rlimits at or below the host's, and
# buildah's defaults raise them. These are the values seen working (see docs/image.md).
BUILD_ULIMITS = ("nofile=20000:20000", "nproc=1000:1000")
STORAGE_DRIVER = "overlay"
IMAGE_NAME = "docker.io/library/recluster"

# What the Dockerfile's context holds (it is an allow-list, see .dockerignore) and the cache key covers.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "LICENSE")
CONTEXT_DIRS = ("src", "requirements")  # requirements/runtime.lock: the hashed dependency tree
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def _console(console: Console | None) -> Console:
    return console if console is not None else Console(stderr=True)


@contextlib.contextmanager
def _step(console: Console, what: str) -> Iterator[None]:
    """One step of work: announced, timed, and reported done (or failed)."""
    console.print(f"[bold]\u2192[/bold] {what} ...", soft_wrap=True)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        elapsed = time.monotonic() - started
        console.print(f"[red]\u2717[/red] {what} failed after {elapsed:.1f}s", soft_wrap=True)
        raise
    console.print(f"[green]\u2713[/green] {what} ({time.monotonic() - started:.1f}s)", soft_wrap=True)


# --------------------------------------------------------------------------------------------------
# buildah with its own storage


@dataclass(frozen=True)
class Buildah:
    """buildah with its storage under `home` (`storage/` for images, `run/` for its runtime state)."""

    home: Path
    driver: str = STORAGE_DRIVER

    @property
    def root(self) -> Path:
        return self.home / "storage"

    @property
    def runroot(self) -> Path:
        return self.home / "run"

    def argv(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            self.driver,
            *args,
        ]

    def image_label(self, image: str, label: str) -> str | None:
        """A label of a local image, or None if the image (or the label) does not exist."""
        try:  # a missing image is an expected answer here, not a failure to keep a log of
            result = run(self.argv("inspect", "--type", "image", image), timeout=120, check=False)
        except CommandError:
            return None
        if result.returncode != 0:
            return None
        labels = (json.loads(result.stdout).get("OCIv1") or {}).get("config", {}).get("Labels") or {}
        value = labels.get(label)
        return value if isinstance(value, str) else None


def buildah_for(cache_dir: Path) -> Buildah:
    return Buildah(cache_dir / "buildah")


# Every rebuild leaves the previous image and its per-step cache behind (a source change adds a new
# layer with the virtualenv); past this size, unnamed images are pruned after a build.
STORAGE_LIMIT = 6 * 1024**3


def tree_size(path: Path) -> int:
    """Bytes allocated under `path` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def prune_buildah(cache_dir: Path, console: Console | None = None) -> None:
    """Remove unnamed images from our buildah storage (old builds and the per-step layer cache: the
    next build reinstalls the dependencies). Named images (the base, the latest build) stay."""
    buildah = buildah_for(cache_dir)
    with _step(_console(console), f"prune unnamed images in {buildah.root}"):
        run(buildah.argv("rmi", "--prune"), timeout=600)


def reset_buildah(cache_dir: Path) -> None:
    """Remove our buildah storage entirely (its overlay mounts first)."""
    home = buildah_for(cache_dir).home
    if home.exists():
        unmount_under(home)
        shutil.rmtree(home)


# --------------------------------------------------------------------------------------------------
# base rootfs


def base_key(suite: str = SUITE, variant: str = VARIANT, packages: Sequence[str] = BASE_PACKAGES) -> str:
    text = json.dumps([BASE_RECIPE, suite, variant, sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apt_mirrors(sources_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """(debian, debian-security) mirror URLs this machine's apt uses, so debootstrap and the image's
    apt-get use a mirror we know is reachable. Falls back to deb.debian.org."""
    texts: list[str] = []
    for path in [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*"))]:
        if path.suffix in {".list", ".sources"} and path.is_file():
            with contextlib.suppress(OSError):
                texts.append(path.read_text())
    return _pick_mirrors("\n".join(texts))


def _pick_mirrors(text: str) -> tuple[str, str]:
    main, security = DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR
    found_main = found_security = False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        urls: list[str] = []
        if line.startswith("URIs:"):
            urls = line.split()[1:]
        elif line.startswith(("deb ", "deb-src ")):
            urls = [w for w in line.split()[1:] if "://" in w][:1]
        for url in urls:
            url = url.rstrip("/")
            if url.endswith("/debian-security") and not found_security:
                security, found_security = url, True
            elif url.endswith("/debian") and not found_main:
                main, found_main = url, True
    return main, security


def _sources_file(suite: str, main: str, security: str) -> str:
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    return (
        f"Types: deb\nURIs: {main}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        f"Signed-By: {keyring}\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\n"
        f"Signed-By: {keyring}\n"
    )


# What Debian's official slim images leave out (debuerreotype's slimify), applied by dpkg from now on.
_DPKG_EXCLUDES = """\
# like Debian's official -slim images: no docs, man pages or translations (copyright files stay)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
"""
_CLEAN_CMD = (
    "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"
)
_APT_CLEAN = f"""\
// like Debian's official images: no .deb files kept after installation
DPkg::Post-Invoke {{ "{_CLEAN_CMD}"; }};
APT::Update::Post-Invoke {{ "{_CLEAN_CMD}"; }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""


def _slim_rootfs(rootfs: Path, suite: str, main: str, security: str) -> None:
    """Turn a debootstrap tree into what an image base needs: apt sources of a reachable mirror,
    slim dpkg excludes, and none of the host's files (resolv.conf, hostname) or device nodes."""
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(_sources_file(suite, main, security))
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(_DPKG_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(_APT_CLEAN)
    share = rootfs / "usr/share"
    for sub in ("groff", "info", "linda", "man"):
        _empty_dir(share / sub)
    _empty_dir(share / "lintian/overrides")
    _empty_dir(share / "locale", keep={"locale.alias"})
    doc = share / "doc"
    if doc.is_dir():
        for pkg in doc.iterdir():
            if pkg.is_dir() and not pkg.is_symlink():
                _empty_dir(pkg, keep={"copyright"})
            elif pkg.name != "copyright":
                pkg.unlink()
    _empty_dir(rootfs / "var/lib/apt/lists", keep={"partial", "lock"})
    leftovers = ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/log/**/*.log", "var/log/*.log")
    for pattern in leftovers:
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    # the runtime provides /dev; debootstrap's device nodes stay out of the image
    _empty_dir(rootfs / "dev")
    _empty_dir(rootfs / "tmp")
    for name in ("etc/resolv.conf", "etc/hostname", "etc/hosts"):
        path = rootfs / name
        if path.is_symlink() or path.exists():
            path.unlink()
            path.write_text("")
    machine_id = rootfs / "etc/machine-id"
    if machine_id.exists():
        machine_id.write_text("")


def _empty_dir(path: Path, keep: set[str] | None = None) -> None:
    if not path.is_dir() or path.is_symlink():
        return
    for child in path.iterdir():
        if keep and child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def ensure_base_rootfs(
    cache_dir: Path,
    *,
    suite: str = SUITE,
    variant: str = VARIANT,
    packages: Sequence[str] = BASE_PACKAGES,
    image: str = BASE_IMAGE,
    mirrors: tuple[str, str] | None = None,
    console: Console | None = None,
) -> Path:
    """The debootstrap rootfs (a directory) for `suite`, built once into `cache_dir/base/<key>`, and
    imported into our buildah storage as `image`. A `complete` marker is written only after success,
    so an interrupted run is redone from scratch. Returns the rootfs directory."""
    console = _console(console)
    key = base_key(suite, variant, packages)
    base = cache_dir / "base" / f"{suite}-{variant}-{key}"
    rootfs = base / "rootfs"
    with locked(cache_dir / "base.lock", console, "the base rootfs"):
        if not (base / "complete").exists():
            _debootstrap(base, suite, variant, packages, mirrors or apt_mirrors(), console)
        _import_base(cache_dir, rootfs, image, key, console)
    return rootfs


def _debootstrap(
    base: Path, suite: str, variant: str, packages: Sequence[str], mirrors: tuple[str, str], console: Console
) -> None:
    """`base/rootfs` from scratch, then `base/complete`."""
    main, security = mirrors
    if base.exists():
        unmount_under(base)  # debootstrap mounts /proc and /sys inside the target
        shutil.rmtree(base)
    base.mkdir(parents=True)
    rootfs = base / "rootfs"
    argv = ["debootstrap", f"--variant={variant}"]
    if packages:
        argv.append("--include=" + ",".join(packages))
    argv += [suite, str(rootfs), main]
    with _step(console, f"debootstrap {variant} {suite} from {main} (about a minute, cached after)"):
        try:
            run(argv, timeout=1800, console=console, stream=True)
        finally:
            unmount_under(base)
        _slim_rootfs(rootfs, suite, main, security)
    record = {"suite": suite, "variant": variant, "packages": list(packages), "mirror": main}
    (base / "complete").write_text(json.dumps(record) + "\n")


def _import_base(cache_dir: Path, rootfs: Path, image: str, key: str, console: Console) -> None:
    """`image` in our buildah storage from `rootfs`, unless it is already there with the same key."""
    buildah = buildah_for(cache_dir)
    label = "org.recluster.base-key"
    if buildah.image_label(image, label) == key:
        return
    with _step(console, f"import the base rootfs into buildah as {image}"):
        tar_path = rootfs.parent / "rootfs.tar.tmp"
        try:
            # tar (as root, numeric owners) keeps owners, modes, links and capabilities exactly.
            run(
                [
                    "tar",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=security.capability",
                    "-C",
                    str(rootfs),
                    "-cf",
                    str(tar_path),
                    ".",
                ],
                timeout=600,
            )
            out = run(buildah.argv("from", "--pull=never", "scratch"), timeout=120).stdout
            container = out.strip().splitlines()[-1]
            try:
                run(buildah.argv("add", container, str(tar_path), "/"), timeout=900)
                run(
                    buildah.argv(
                        "config",
                        "--env",
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "--cmd",
                        "bash",
                        "--label",
                        f"{label}={key}",
                        "--created-by",
                        f"recluster: debootstrap --variant={VARIANT} {SUITE}",
                        container,
                    ),
                    timeout=120,
                )
                run(buildah.argv("commit", "--rm", container, image), timeout=900)
            except BaseException:
                with contextlib.suppress(CommandError):
                    run(buildah.argv("rm", container), timeout=120)
                raise
        finally:
            tar_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# the project image


def project_version(repo_dir: Path) -> str:
    with (repo_dir / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    return str(version)


def default_tag(repo_dir: Path) -> str:
    return f"{IMAGE_NAME}:{project_version(repo_dir)}"


def context_files(repo_dir: Path) -> list[str]:
    """The repository files the image is built from, relative and sorted (the cache key's inputs)."""
    files = [name for name in CONTEXT_FILES if (repo_dir / name).is_file()]
    for top in CONTEXT_DIRS:
        for dirpath, dirnames, filenames in os.walk(repo_dir / top):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
            for name in filenames:
                if not name.endswith(_SKIP_SUFFIXES):
                    files.append(str((Path(dirpath) / name).relative_to(repo_dir)))
    return sorted(files)


def input_hash(repo_dir: Path, tag: str, base: str = "") -> str:
    """sha256 over the tag, the base key and every input file (path, size, bytes), in sorted order."""
    digest = hashlib.sha256()
    digest.update(f"recluster-image-v1\0{tag}\0{base}\0".encode())
    for rel in context_files(repo_dir):
        data = (repo_dir / rel).read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


# Archives kept per image name: other processes (a test run, `local up`) may build other inputs under
# the same name at the same time, and each keeps using the archive it was given.
KEEP_ARCHIVES = 3


def _archive_stem(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", tag.split("/")[-1])


def archive_path(cache_dir: Path, tag: str, key: str) -> Path:
    """`<cache>/images/<name>_<tag>-<key prefix>.tar`: one archive per set of inputs."""
    return cache_dir / "images" / f"{_archive_stem(tag)}-{key[:16]}.tar"


def _prune_archives(archive: Path, tag: str) -> None:
    """Keep the KEEP_ARCHIVES newest archives of `tag` (always `archive`), remove the rest."""
    stem = _archive_stem(tag)
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{16}\.tar")
    olds = [p for p in archive.parent.iterdir() if pattern.fullmatch(p.name) and p != archive]
    olds.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in olds[KEEP_ARCHIVES - 1 :]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".key").unlink(missing_ok=True)


BUILD_CA_PATH = "/run/recluster-build-ca.crt"


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (it may reach PyPI through a TLS-inspecting proxy
    whose CA only the host's bundle holds), or None."""
    candidates = [os.environ.get(v) for v in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")]
    for candidate in [*candidates, "/etc/ssl/certs/ca-certificates.crt"]:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _ca_bundle_args() -> list[str]:
    """Hand the host's CA bundle to pip in the build stages: mounted for RUN steps only (never
    committed into a layer) and named by the Dockerfile's PIP_CA_BUNDLE build argument."""
    bundle = host_ca_bundle()
    if bundle is None:
        return []
    return [
        "--volume",
        f"{bundle.resolve()}:{BUILD_CA_PATH}:ro",
        "--build-arg",
        f"PIP_CA_BUNDLE={BUILD_CA_PATH}",
    ]


def ensure_project_image(
    repo_dir: Path,
    cache_dir: Path,
    tag: str | None = None,
    *,
    console: Console | None = None,
    timeout: float = 3600,
) -> Path:
    """The project image built from `repo_dir`'s Dockerfile, as a docker-archive tar in
    `cache_dir/images`, named `tag` inside (default docker.io/library/recluster:<version>).
    Rebuilt only when the input hash changes: the archive's name carries its prefix and
    `<archive>.key` beside it the whole hash."""
    repo_dir = repo_dir.resolve()
    tag = tag or default_tag(repo_dir)
    key = input_hash(repo_dir, tag, base_key())
    archive = archive_path(cache_dir, tag, key)
    key_file = archive.with_name(archive.name + ".key")
    if _is_current(archive, key_file, key):
        return archive

    console = _console(console)
    with locked(cache_dir / "image.lock", console, f"building {tag}"):
        if _is_current(archive, key_file, key):  # built by whoever held the lock
            return archive
        _build(repo_dir, cache_dir, tag, archive, key_file, key, console, timeout)
    return archive


def _is_current(archive: Path, key_file: Path, key: str) -> bool:
    try:
        return archive.is_file() and key_file.read_text().strip() == key
    except OSError:
        return False


def _build(
    repo_dir: Path,
    cache_dir: Path,
    tag: str,
    archive: Path,
    key_file: Path,
    key: str,
    console: Console,
    timeout: float,
) -> None:
    ensure_base_rootfs(cache_dir, console=console)
    buildah = buildah_for(cache_dir)
    with _step(console, f"build {tag} from {repo_dir / 'Dockerfile'} with buildah"):
        argv = buildah.argv(
            "bud",
            "--runtime",
            RUNC,
            *(f"--ulimit={u}" for u in BUILD_ULIMITS),
            "--pull=never",
            "--layers",
            "--force-rm",
            "--network=host",
            "--build-arg",
            f"VERSION={project_version(repo_dir)}",
            *_ca_bundle_args(),
            "-f",
            str(repo_dir / "Dockerfile"),
            "-t",
            tag,
            str(repo_dir),
        )
        run(argv, timeout=timeout, console=console, stream=True)
    with _step(console, f"write {archive}"):
        archive.parent.mkdir(parents=True, exist_ok=True)
        key_file.unlink(missing_ok=True)
        tmp = archive.with_name(f"{archive.name}.{os.getpid()}.tmp")
        try:
            run(buildah.argv("push", tag, f"docker-archive:{tmp}:{tag}"), timeout=900)
            tmp.replace(archive)
        finally:
            tmp.unlink(missing_ok=True)
        key_file.write_text(key + "\n")
        _prune_archives(archive, tag)
    if tree_size(buildah.root) > STORAGE_LIMIT:
        prune_buildah(cache_dir, console)


# --------------------------------------------------------------------------------------------------
# containerd


def archive_tags(archive: Path) -> list[str]:
    """The image names in a docker-archive, normalized the way containerd names them."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive}: no manifest.json (not a docker-archive)")
        manifest = json.load(member)
    return [normalize_name(t) for entry in manifest for t in entry.get("RepoTags") or []]


def archive_identity(archive: Path) -> str:
    """What the images of a docker-archive are: their config digests (a rebuilt image under the same
    tag has another)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive}: no manifest.json (not a docker-archive)")
        manifest = json.load(member)
    return ",".join(str(entry.get("Config", "")) for entry in manifest)


def normalize_name(ref: str) -> str:
    """docker.io's short names in full: `redis:7` -> `docker.io/library/redis:7`."""
    first, _, rest = ref.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        ref = f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"
    if ref.startswith("docker.io/") and ref.count("/") == 1:
        ref = "docker.io/library/" + ref.removeprefix("docker.io/")
    return ref


def import_image(
    archive: Path,
    containerd_address: str | Path,
    namespace: str = "k8s.io",
    *,
    snapshotter: str | None = None,
    console: Console | None = None,
) -> list[str]:
    """Import a docker-archive into the containerd at `containerd_address` (idempotent: a second import
    of the same archive changes nothing). Checks the archive's names are there afterwards and
    returns them."""
    console = _console(console)
    names = archive_tags(archive)
    if not names:
        raise ValueError(f"{archive}: the archive names no image")
    ctr = ["ctr", "--address", str(containerd_address), "--namespace", namespace]
    with _step(console, f"import {', '.join(names)} into containerd {containerd_address}"):
        argv = [*ctr, "images", "import"]
        if snapshotter:
            argv += ["--snapshotter", snapshotter]
        run([*argv, str(archive)], timeout=900)
        present = set(run([*ctr, "images", "list", "--quiet"], timeout=120).stdout.split())
    missing = [n for n in names if n not in present]
    if missing:
        raise RuntimeError(f"after importing {archive}, containerd lacks {', '.join(missing)}")
    return names
