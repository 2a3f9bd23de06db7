"""The pod sandbox image of the local cluster's nodes, built from tools/pause (no registry here)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from recluster.local.binimage import binary_image
from recluster.local.kubebuild import module_binary
from recluster.local.paths import repo_dir

PAUSE_IMAGE = "localhost/recluster/pause:1"


def ensure_pause_image(console: Console | None = None) -> Path:
    """A docker-archive of the pause image, rebuilt only when tools/pause changes."""
    console = console or Console(stderr=True)
    binary = module_binary(Path(repo_dir()) / "tools" / "pause", ".", "pause", console)
    return binary_image(PAUSE_IMAGE, binary, path="/pause", console=console)
