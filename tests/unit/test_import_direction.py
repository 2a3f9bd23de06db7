"""Imports point down (docs/architecture.md, "Layers"): `api/` (pure models, validation, names) imports
only the standard library, pydantic and itself; `clients/` (I/O adapters) and `http_limits` may import
`api/`; each part (node, console, rigger, broker, operator, local, install, admin) imports only those
and itself, never another part, except the node (it serves the console in-process) and `local` (its
sample comes from `install`). CLI modules (`cli.py`, `__main__.py`) wire everything and may import anything.
Every import counts, also those inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"
BOTTOM = {"api", "clients", "http_limits", "http_auth", "certificates", "logs"}
PARTS = {"node", "console", "rigger", "broker", "operator", "local", "install", "admin"}
# what each layer may import of recluster, besides itself
ALLOWED: dict[str, set[str]] = {
    "api": set(),
    "clients": {"api"},
    "http_limits": {"api"},
    "http_auth": set(),
    "certificates": set(),
    "logs": set(),
    **{part: set(BOTTOM) for part in PARTS},
}
ALLOWED["node"] |= {"console"}  # the node runner serves the console in-process
ALLOWED["local"] |= {"install"}  # `local up` installs the sample with the bundle
CLI_MODULES = {"cli", "__main__"}
API_THIRD_PARTY = {"pydantic"}  # api/ is pure: the standard library, pydantic and itself


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree: `from x.y import z` gives x.y, and
    `from recluster import x` gives recluster.x (x is a layer, or one of the package's own names)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "recluster":
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"
            else:
                yield node.lineno, base


def layer(module: str, layers: set[str]) -> str | None:
    """The layer of a recluster module: its first name below `recluster`; None for the package
    itself and the names it defines (`from recluster import __version__`)."""
    names = module.split(".")
    return names[1] if len(names) > 1 and names[1] in layers else None


def violations(src: Path) -> list[str]:
    found = []
    root = src / "recluster"
    layers = {p.stem for p in root.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, src)
        if module.rpartition(".")[2] in CLI_MODULES:
            continue
        own = layer(module, layers)
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in imported(tree, module, path.name == "__init__.py"):
            where = f"{path.relative_to(src)}:{line}"
            top = target.split(".")[0]
            if top != "recluster":
                if own == "api" and top not in sys.stdlib_module_names and top not in API_THIRD_PARTY:
                    found.append(f"{where}: {module} imports {target} (api/ is pure)")
                continue
            other = layer(target, layers)
            if other is None:
                continue  # the package's own names (its version): everyone may import those
            if other == own:
                continue
            if own is None or other not in ALLOWED.get(own, set()):
                found.append(f"{where}: {module} imports {target} ({own} may not import {other})")
    return sorted(set(found))


def test_imports_point_down() -> None:
    problems = violations(SRC)
    assert not problems, "imports against the layers (docs/architecture.md):\n" + "\n".join(problems)


def write(root: Path, name: str, text: str = "") -> None:
    path = root / "recluster" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_check_sees_upward_sideways_relative_and_lazy_imports(tmp_path: Path) -> None:
    write(tmp_path, "__init__.py", '__version__ = "0"\n')
    for package in ("api", "clients", "rigger", "operator", "operator/rec", "node", "console"):
        write(tmp_path, f"{package}/__init__.py")
    write(tmp_path, "api/names.py", "import json\nimport pydantic\nimport httpx\n")
    write(tmp_path, "clients/kube.py", "from recluster.api import names\nfrom recluster.node import x\n")
    write(tmp_path, "rigger/loop.py", "from recluster.operator.rec.nodeapi import node_api\n")
    write(tmp_path, "operator/rec/plan.py", "def f():\n    from ...rigger import plan\n")
    write(tmp_path, "console/server.py", "from recluster.node.config import NodeConfig\n")
    write(tmp_path, "node/runner.py", "from recluster.console.server import with_console\n")
    write(tmp_path, "rigger/cli.py", "from recluster.operator import runner\n")
    write(tmp_path, "rigger/version.py", "from recluster import __version__\n")
    found = violations(tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == [
        "recluster.api.names imports httpx (api/ is pure)",
        "recluster.clients.kube imports recluster.node (clients may not import node)",
        "recluster.console.server imports recluster.node.config (console may not import node)",
        "recluster.operator.rec.plan imports recluster.rigger (operator may not import rigger)",
        "recluster.rigger.loop imports recluster.operator.rec.nodeapi (rigger may not import operator)",
    ]
