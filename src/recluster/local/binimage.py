"""Small images that hold one binary of ours (the pod sandbox, CoreDNS), built with buildah and
kept as docker-archives keyed by the binary's content, like the project image."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rich.console import Console

from recluster.local.images import buildah_for
from recluster.local.images import run as run_logged
from recluster.local.paths import cache_dir


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
    """A docker-archive of image `name` holding `binary` at `path` as its entrypoint."""
    console = console or Console(stderr=True)
    digest = hashlib.sha256(binary.read_bytes())
    digest.update(json.dumps([name, path, base, user, args]).encode())
    out = cache_dir() / "images"
    archive = out / f"{name.replace('/', '_').replace(':', '_')}-{digest.hexdigest()[:12]}.tar"
    if archive.exists():
        return archive
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"building image {name} from {base}")
    buildah = buildah_for(cache_dir())
    container = run_logged(buildah.argv("from", "--pull=never", base), timeout=300).strip().splitlines()[-1]
    try:
        run_logged(buildah.argv("copy", "--chmod", "0755", container, str(binary), path), timeout=120)
        entry = json.dumps([path, *args])
        config = ["config", "--entrypoint", entry, "--cmd", "[]", "--user", user, container]
        run_logged(buildah.argv(*config), timeout=120)
        run_logged(buildah.argv("commit", container, name), timeout=300)
    finally:
        run_logged(buildah.argv("rm", container), timeout=120)
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    run_logged(buildah.argv("push", name, f"docker-archive:{partial}:{name}"), timeout=600)
    partial.rename(archive)
    return archive
