"""The `recluster` command. Each part registers its subcommand lazily, so `recluster local ...`
does not import the operator's dependencies and a missing part fails only when it is called."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from recluster import __version__

# subcommand -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "local": "recluster.local.cli:local",
    "node": "recluster.node.cli:node",
    "dev-cluster": "recluster.node.cli:dev_cluster",
    "operator": "recluster.operator.cli:operator",
    "rigger": "recluster.rigger.cli:rigger",
    "broker": "recluster.broker.cli:broker",
    "crds": "recluster.api.cli:crds",
    "bundle": "recluster.install.cli:bundle",
    "admin": "recluster.admin.cli:admin",  # also the kubectl plugin `kubectl recluster`
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if _spec_exists(SUBCOMMANDS[name]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None or not _spec_exists(target):
            return None
        module_name, attr = target.split(":")
        command: Any = getattr(importlib.import_module(module_name), attr)
        return command  # type: ignore[no-any-return]


def _spec_exists(target: str) -> bool:
    module_name = target.split(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="recluster")
def cli() -> None:
    """Redis Enterprise-style clusters on Kubernetes."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
