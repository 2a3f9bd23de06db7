"""The pure parts of the image pipeline: mirror choice, image names, the cache key."""

from __future__ import annotations

from pathlib import Path

import pytest

from recluster.local.base_image import _pick_mirrors
from recluster.local.images import context_files, input_hash, normalize_name

pytestmark = pytest.mark.unit


def test_mirrors_from_deb822_sources() -> None:
    text = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security

Types: deb
URIs: https://deb.nodesource.com/node_20.x
"""
    assert _pick_mirrors(text) == ("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_mirrors_from_one_line_sources_and_fallback() -> None:
    assert _pick_mirrors("deb [arch=amd64] http://m.example/debian bookworm main")[0] == "http://m.example/debian"
    assert _pick_mirrors("# deb http://commented.example/debian bookworm main") == (
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
    )


@pytest.mark.parametrize(
    ("ref", "full"),
    [
        ("recluster:0.1.0", "docker.io/library/recluster:0.1.0"),
        ("docker.io/recluster:0.1.0", "docker.io/library/recluster:0.1.0"),
        ("someone/recluster:1", "docker.io/someone/recluster:1"),
        ("docker.io/library/recluster:0.1.0", "docker.io/library/recluster:0.1.0"),
        ("registry.example:5000/a/b:1", "registry.example:5000/a/b:1"),
        ("localhost/recluster:dev", "localhost/recluster:dev"),
    ],
)
def test_normalize_name(ref: str, full: str) -> None:
    assert normalize_name(ref) == full


def make_repo(root: Path) -> Path:
    (root / "src/recluster/sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / ".dockerignore").write_text("*\n")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    (root / "src/recluster/__init__.py").write_text("")
    (root / "src/recluster/sub/mod.py").write_text("A = 1\n")
    return root


def test_cache_key_covers_the_build_inputs_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    assert context_files(repo) == [
        ".dockerignore",
        "Dockerfile",
        "pyproject.toml",
        "src/recluster/__init__.py",
        "src/recluster/sub/mod.py",
    ]
    key = input_hash(repo, "t:1")
    # not inputs: byte code, caches, files outside the context
    (repo / "src/recluster/__pycache__").mkdir()
    (repo / "src/recluster/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    (repo / "tests").mkdir()
    (repo / "tests/test_x.py").write_text("")
    assert input_hash(repo, "t:1") == key
    # inputs: any byte of a source file, a new file, the Dockerfile, the tag, the base
    (repo / "src/recluster/sub/mod.py").write_text("A = 2\n")
    changed = input_hash(repo, "t:1")
    assert changed != key
    (repo / "src/recluster/sub/new.py").write_text("")
    assert input_hash(repo, "t:1") != changed
    assert input_hash(repo, "t:2") != input_hash(repo, "t:1")
    assert input_hash(repo, "t:1", "base-a") != input_hash(repo, "t:1", "base-b")


def test_renaming_a_file_changes_the_key(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    key = input_hash(repo, "t")
    (repo / "src/recluster/sub/mod.py").rename(repo / "src/recluster/sub/mod2.py")
    assert input_hash(repo, "t") != key
