"""The pod sandbox image of the local cluster's nodes, built from tools/pause (no registry here)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rich.console import Console

from recluster.local.images import buildah_for
from recluster.local.images import run as run_logged
from recluster.local.kubebuild import go_binary
from recluster.local.paths import cache_dir, repo_dir

PAUSE_IMAGE = "localhost/recluster/pause:1"


def ensure_pause_image(console: Console | None = None) -> Path:
    """A docker-archive of the pause image, rebuilt only when tools/pause changes."""
    console = console or Console(stderr=True)
    module = Path(repo_dir()) / "tools" / "pause"
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        digest.update((module / name).read_bytes())
    key = digest.hexdigest()[:12]
    out = cache_dir() / "images"
    archive = out / f"pause-{key}.tar"
    if archive.exists():
        return archive
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"building the pod sandbox image {PAUSE_IMAGE}")
    binary = out / f"pause-{key}"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    run_logged(
        [go_binary(), "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."],
        timeout=600,
        cwd=module,
        env=env,
    )
    buildah = buildah_for(cache_dir())
    container = run_logged(buildah.argv("from", "scratch"), timeout=120).strip().splitlines()[-1]
    try:
        run_logged(buildah.argv("copy", container, str(binary), "/pause"), timeout=120)
        run_logged(
            buildah.argv("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container),
            timeout=120,
        )
        run_logged(buildah.argv("commit", container, PAUSE_IMAGE), timeout=300)
    finally:
        run_logged(buildah.argv("rm", container), timeout=120)
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    run_logged(buildah.argv("push", PAUSE_IMAGE, f"docker-archive:{partial}:{PAUSE_IMAGE}"), timeout=300)
    partial.rename(archive)
    return archive
