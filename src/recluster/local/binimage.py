"""Small images that hold one binary of ours (the pod sandbox, CoreDNS), built with buildah and
kept as docker-archives keyed by the binary's content and their base, like the project image. An
image on the Debian base makes that base first (a new machine has none)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rich.console import Console

from recluster.local.base_image import BASE_IMAGE, base_key, ensure_base_rootfs
from recluster.local.buildah import buildah_for
from recluster.local.locks import locked
from recluster.local.paths import cache_dir
from recluster.local.run import run


def binary_image(
    name: str,
    binary: Path,
    *,
    path: str,
    base: str = "scratch",
    user: str = "65534:65534",
    args: tuple[str, ...] = (),
    console: Console | None = None,
) -> Path:
    """A docker-archive of image `name` holding `binary` at `path` as its entrypoint, on `base`:
    "scratch" or BASE_IMAGE (the Debian base, built here when missing)."""
    if base not in ("scratch", BASE_IMAGE):
        raise ValueError(f"{name}: unknown base image {base!r} (scratch or {BASE_IMAGE})")
    console = console or Console(stderr=True)
    digest = hashlib.sha256(binary.read_bytes())
    base_id = base_key() if base == BASE_IMAGE else base
    digest.update(json.dumps([name, path, base, base_id, user, args]).encode())
    out = cache_dir() / "images"
    archive = out / f"{name.replace('/', '_').replace(':', '_')}-{digest.hexdigest()[:12]}.tar"
    if archive.exists():
        return archive
    with locked(archive.with_suffix(".lock"), console, f"building image {name}"):
        if not archive.exists():  # else built by whoever held the lock
            _build(name, binary, archive, path, base, user, args, console)
    return archive


def _build(
    name: str, binary: Path, archive: Path, path: str, base: str, user: str, args: tuple[str, ...],
    console: Console,
) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    if base == BASE_IMAGE:
        ensure_base_rootfs(cache_dir(), console=console)
    console.print(f"building image {name} from {base}")
    buildah = buildah_for(cache_dir())
    container = run(buildah.argv("from", "--pull=never", base), timeout=300).stdout.strip().splitlines()[-1]
    try:
        run(buildah.argv("copy", "--chmod", "0755", container, str(binary), path), timeout=120)
        entry = json.dumps([path, *args])
        config = ["config", "--entrypoint", entry, "--cmd", "[]", "--user", user, container]
        run(buildah.argv(*config), timeout=120)
        run(buildah.argv("commit", container, name), timeout=300)
    finally:
        run(buildah.argv("rm", container), timeout=120)
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    run(buildah.argv("push", name, f"docker-archive:{partial}:{name}"), timeout=600)
    partial.rename(archive)
