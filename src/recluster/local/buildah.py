"""buildah with its own storage: state under `<cache>/buildah` (overlay storage driver, runc), not in
the machine's /var/lib/containers, so nothing here touches another user of buildah or podman."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from recluster.local.containerd import unmount_under
from recluster.local.progress import console_or_stderr as _console
from recluster.local.progress import step as _step
from recluster.local.run import CommandError, run

RUNC = "/usr/sbin/runc"
# The machine lacks CAP_SYS_RESOURCE: RUN steps must keep rlimits at or below the host's, and
# buildah's defaults raise them. These are the values seen working (see docs/image.md).
BUILD_ULIMITS = ("nofile=20000:20000", "nproc=1000:1000")
STORAGE_DRIVER = "overlay"


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

