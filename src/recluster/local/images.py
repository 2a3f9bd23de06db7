"""Container images for the local cluster, built on this machine (no registry is reachable).

1. `ensure_base_images` (base_image.py): the Dockerfile's Debian bases (trixie, and bookworm for Redis
   7.0), from debootstrap.
2. `ensure_project_image`: the repository's Dockerfile built with buildah (buildah.py) on that base,
   written to a docker-archive tar, rebuilt only when a content hash of its inputs changes.
3. `import_image`: the archive imported into a containerd (every node's, in the local cluster).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tomllib
from pathlib import Path

from rich.console import Console

from recluster.local.base_image import bases_key, ensure_base_images
from recluster.local.buildah import (
    BUILD_ULIMITS,
    RUNC,
    STORAGE_LIMIT,
    buildah_for,
    prune_buildah,
    tree_size,
)
from recluster.local.locks import locked
from recluster.local.progress import console_or_stderr as _console
from recluster.local.progress import step as _step
from recluster.local.run import run

IMAGE_NAME = "docker.io/library/recluster"

# What the Dockerfile's context holds (it is an allow-list, see .dockerignore) and the cache key covers.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "LICENSE")
CONTEXT_DIRS = ("src", "requirements")  # requirements/runtime.lock: the hashed dependency tree
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")



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


def input_hash(repo_dir: Path, tag: str, base: str = "", version: str = "") -> str:
    """sha256 over the tag, the base key, a version other than the project's and every input file
    (path, size, bytes), in sorted order."""
    digest = hashlib.sha256()
    digest.update(f"recluster-image-v1\0{tag}\0{base}\0".encode())
    if version:
        digest.update(f"version\0{version}\0".encode())
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
    version: str | None = None,
    console: Console | None = None,
    timeout: float = 3600,
) -> Path:
    """The project image built from `repo_dir`'s Dockerfile, as a docker-archive tar in
    `cache_dir/images`, named `tag` inside (default docker.io/library/recluster:<version>).
    `version` (default: the project's) is the image's version label: a second version makes a second
    image of the same code (the upgrade tests roll from one to the other). Rebuilt only when the input
    hash changes: the archive's name carries its prefix and `<archive>.key` beside it the whole hash."""
    repo_dir = repo_dir.resolve()
    tag = tag or default_tag(repo_dir)
    key = input_hash(repo_dir, tag, bases_key(), version or "")
    archive = archive_path(cache_dir, tag, key)
    key_file = archive.with_name(archive.name + ".key")
    if _is_current(archive, key_file, key):
        return archive

    console = _console(console)
    with locked(cache_dir / "image.lock", console, f"building {tag}"):
        if _is_current(archive, key_file, key):  # built by whoever held the lock
            return archive
        _build(repo_dir, cache_dir, tag, version or project_version(repo_dir), archive, key_file, key,
               console, timeout)
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
    version: str,
    archive: Path,
    key_file: Path,
    key: str,
    console: Console,
    timeout: float,
) -> None:
    ensure_base_images(cache_dir, console=console)
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
            f"VERSION={version}",
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

