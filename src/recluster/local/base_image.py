"""The base image of the project's Dockerfile, built on this machine (no registry is reachable): a
Debian rootfs from `debootstrap --variant=minbase`, slimmed as Debian's slim image is, cached, and
imported into our buildah storage as `docker.io/library/debian:trixie-slim` (the Dockerfile's FROM), and
the same for bookworm, whose redis-server 7.0 the image keeps for existing databases."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from recluster.local.buildah import buildah_for
from recluster.local.containerd import unmount_under
from recluster.local.locks import locked
from recluster.local.progress import console_or_stderr as _console
from recluster.local.progress import step as _step
from recluster.local.run import CommandError, run

BASE_IMAGE = "docker.io/library/debian:trixie-slim"
SUITE = "trixie"
# The Debian release whose redis-server (7.0.15) the Dockerfile copies from a build stage, so databases
# created on Redis 7.0 keep their engine on the trixie image.
LEGACY_BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
LEGACY_SUITE = "bookworm"
# Every base the Dockerfile names: (suite, image).
BASES: tuple[tuple[str, str], ...] = ((SUITE, BASE_IMAGE), (LEGACY_SUITE, LEGACY_BASE_IMAGE))
VARIANT = "minbase"
# extra packages for debootstrap --include (none: Debian's slim image has none either)
BASE_PACKAGES: tuple[str, ...] = ()
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Bump when the way the rootfs is prepared changes, so cached rootfs are rebuilt.
BASE_RECIPE = "2"



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
        _import_base(cache_dir, rootfs, image, key, f"debootstrap --variant={variant} {suite}", console)
    return rootfs


def bases_key() -> str:
    """One key over every base the Dockerfile names (the project image's cache key covers it)."""
    return "+".join(base_key(suite) for suite, _ in BASES)


def ensure_base_images(cache_dir: Path, *, console: Console | None = None) -> None:
    """Every base the Dockerfile names, built and imported into buildah when missing."""
    for suite, image in BASES:
        ensure_base_rootfs(cache_dir, suite=suite, image=image, console=console)


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


def _import_base(cache_dir: Path, rootfs: Path, image: str, key: str, created_by: str,
                 console: Console) -> None:
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
                        f"recluster: {created_by}",
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

