"""requirements/*.lock: the whole dependency tree pinned and hashed, and in line with pyproject.toml.

bin/setup installs requirements/dev.lock and the Dockerfile requirements/runtime.lock, both with
--require-hashes, then the project with --no-deps; so a pin changed in pyproject.toml without running
scripts/lock-deps would silently not take effect. These tests fail instead.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
REQUIREMENTS = REPO / "requirements"

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;,]+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def direct_pins(specs: list[str]) -> dict[str, str]:
    pins = {}
    for spec in specs:
        match = PIN.match(spec.strip())
        assert match, f"pyproject.toml: {spec!r} is not pinned with == (the lock files follow these pins)"
        pins[canonical(match["name"])] = match["version"]
    return pins


def runtime_pins() -> dict[str, str]:
    return direct_pins(pyproject()["project"]["dependencies"])  # type: ignore[index]


def dev_pins() -> dict[str, str]:
    return direct_pins(pyproject()["project"]["optional-dependencies"]["dev"])  # type: ignore[index]


def build_pins() -> dict[str, str]:
    return direct_pins(pyproject()["build-system"]["requires"])  # type: ignore[index]


def read_lock(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{canonical name: (version, hashes)}; fails on anything but `name==version --hash=...` entries."""
    text = (REQUIREMENTS / name).read_text()
    entries: dict[str, tuple[str, frozenset[str]]] = {}
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split()
        match = PIN.match(requirement)
        assert match, f"{name}: {requirement!r} is not a `name==version` pin"
        assert options, f"{name}: {requirement} has no --hash"
        for option in options:
            assert HASH.match(option), f"{name}: {requirement}: unexpected {option!r}"
        key = canonical(match["name"])
        assert key not in entries, f"{name}: {key} appears twice"
        entries[key] = (match["version"], frozenset(options))
    assert entries, f"{name} is empty"
    return entries


@pytest.mark.parametrize("name", ["runtime.lock", "dev.lock"])
def test_every_entry_is_pinned_and_hashed(name: str) -> None:
    read_lock(name)  # asserts per line
    header = (REQUIREMENTS / name).read_text().split("\n\n", 1)[0]
    assert "scripts/lock-deps" in header, f"{name}: the header must say how to regenerate it"


def test_runtime_lock_holds_the_runtime_pins_and_no_dev_package() -> None:
    lock = read_lock("runtime.lock")
    for package, version in runtime_pins().items():
        assert package in lock, f"runtime.lock lacks {package}: run scripts/lock-deps"
        assert lock[package][0] == version, (
            f"{package}: pyproject.toml pins {version}, runtime.lock has {lock[package][0]}: "
            "run scripts/lock-deps"
        )
    leaked = set(dev_pins()) & set(lock)
    assert not leaked, f"dev-only packages in runtime.lock (the image): {sorted(leaked)}"


def test_dev_lock_holds_the_runtime_and_dev_pins() -> None:
    lock = read_lock("dev.lock")
    for package, version in {**runtime_pins(), **dev_pins()}.items():
        assert package in lock, f"dev.lock lacks {package}: run scripts/lock-deps"
        assert lock[package][0] == version, (
            f"{package}: pyproject.toml pins {version}, dev.lock has {lock[package][0]}: "
            "run scripts/lock-deps"
        )


def test_runtime_lock_is_a_subset_of_dev_lock() -> None:
    runtime, dev = read_lock("runtime.lock"), read_lock("dev.lock")
    missing = set(runtime) - set(dev)
    assert not missing, f"in runtime.lock but not in dev.lock: {sorted(missing)}"
    differ = {name: (runtime[name][0], dev[name][0]) for name in runtime if runtime[name] != dev[name]}
    assert not differ, f"runtime.lock and dev.lock disagree (version or hashes): {differ}"


def test_installers_are_locked_at_the_build_backend_pin() -> None:
    """The project is installed with --no-deps --no-build-isolation, so the build backend must be in
    both lock files at the version pyproject.toml's build-system asks for."""
    installers = direct_pins(
        [
            line
            for line in (REQUIREMENTS / "installers.in").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    )
    for package, version in build_pins().items():
        assert installers.get(package) == version, f"installers.in: {package} must be =={version}"
    for name in ("runtime.lock", "dev.lock"):
        lock = read_lock(name)
        for package, version in {**build_pins(), **installers}.items():
            assert lock.get(package, ("absent",))[0] == version, f"{name}: {package} must be =={version}"


def test_setup_and_dockerfile_install_from_the_locks() -> None:
    setup = (REPO / "bin/setup").read_text()
    assert "--require-hashes -r requirements/dev.lock" in setup
    assert "--no-deps --no-build-isolation -e ." in setup
    assert "requirements/*.lock" in setup  # the re-install stamp covers the lock files
    dockerfile = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    assert "--require-hashes -r requirements/runtime.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
