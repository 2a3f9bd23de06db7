"""`recluster bundle`: write deploy/bundle.yaml from the parts in deploy/, or check that it is current."""

from __future__ import annotations

from pathlib import Path

import click

from recluster.install.bundle import BUNDLE_FILE, bundle_text


@click.command()
@click.option(
    "--deploy-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("deploy"),
    show_default=True,
    help="The directory of the parts; the bundle is written there.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the bundle is missing or stale.")
def bundle(deploy_dir: Path, check: bool) -> None:
    """Generate deploy/bundle.yaml (CRDs, RBAC, admission and metrics Services, operator Deployment)."""
    target = deploy_dir / BUNDLE_FILE
    text = bundle_text(deploy_dir)
    if check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            click.echo(f"{target} is stale (run `recluster bundle`)", err=True)
            raise SystemExit(1)
        click.echo(f"{target} is up to date")
        return
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}")
