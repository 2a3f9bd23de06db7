"""Where the local cluster keeps its files."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RECLUSTER_CACHE_DIR"


def cache_dir() -> Path:
    """Where recluster keeps what it builds and runs locally (the Kubernetes binaries, the base rootfs,
    images, buildah's storage, the local clusters' state): `$RECLUSTER_CACHE_DIR`, else
    `$XDG_CACHE_HOME/recluster`, else `~/.cache/recluster` (not created here). CI points
    RECLUSTER_CACHE_DIR at an empty directory so every build step runs as on a new machine."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recluster"


def repo_dir() -> Path:
    """The checkout this package runs from (src layout: <repo>/src/recluster/local/paths.py)."""
    return Path(__file__).resolve().parents[3]
