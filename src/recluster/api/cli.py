"""`recluster crds`: write the CRDs generated from the models, or check that the written ones are current."""

from __future__ import annotations

from pathlib import Path

import click

from recluster.api.crd import crd_files


def stale_files(directory: Path) -> list[str]:
    """Names of the CRD files under `directory` that are missing or differ from the models."""
    return [
        name
        for name, text in crd_files().items()
        if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text
    ]


@click.command()
@click.option(
    "--output-dir",
    "output_dirs",
    type=click.Path(file_okay=False, path_type=Path),
    multiple=True,
    default=[Path("deploy/crds"), Path("charts/recluster/crds")],
    show_default=True,
    help="Where the CRD files live (repeatable): the plain manifests and the Helm chart's copy.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file is missing or stale.")
def crds(output_dirs: tuple[Path, ...], check: bool) -> None:
    """Generate the RedisEnterpriseCluster and RedisEnterpriseDatabase CRDs from the API models."""
    if check:
        stale = [str(d / name) for d in output_dirs for name in stale_files(d)]
        if stale:
            click.echo(f"stale CRDs: {', '.join(stale)} (run `recluster crds`)", err=True)
            raise SystemExit(1)
        click.echo(f"CRDs in {', '.join(map(str, output_dirs))} are up to date")
        return
    for output_dir in output_dirs:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, text in crd_files().items():
            (output_dir / name).write_text(text, encoding="utf-8")
            click.echo(f"wrote {output_dir / name}")
