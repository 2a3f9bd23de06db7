"""Where the local cluster keeps its files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/recluster`, else `~/.cache/recluster` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recluster"


def repo_dir() -> Path:
    """The checkout this package runs from (src layout: <repo>/src/recluster/local/paths.py)."""
    return Path(__file__).resolve().parents[3]
