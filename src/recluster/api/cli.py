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
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("deploy/crds"),
    show_default=True,
    help="Where the CRD files live.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file is missing or stale.")
def crds(output_dir: Path, check: bool) -> None:
    """Generate the RedisEnterpriseCluster and RedisEnterpriseDatabase CRDs from the API models."""
    if check:
        stale = stale_files(output_dir)
        if stale:
            click.echo(f"stale CRDs in {output_dir}: {', '.join(stale)} (run `recluster crds`)", err=True)
            raise SystemExit(1)
        click.echo(f"CRDs in {output_dir} are up to date")
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in crd_files().items():
        (output_dir / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output_dir / name}")
