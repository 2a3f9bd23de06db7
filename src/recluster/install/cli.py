"""`recluster bundle`: write deploy/bundle.yaml from the parts in deploy/ and the monitoring pack
(deploy/monitoring/, charts/recluster/files/) from install/monitoring.py, or check that they are current."""

from __future__ import annotations

from pathlib import Path

import click

from recluster.install.bundle import BUNDLE_FILE, bundle_text
from recluster.install.monitoring import generated_files


@click.command()
@click.option(
    "--deploy-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("deploy"),
    show_default=True,
    help="The directory of the parts; the bundle is written there (the chart is its sibling charts/).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file is missing or stale.")
def bundle(deploy_dir: Path, check: bool) -> None:
    """Generate deploy/bundle.yaml (CRDs, RBAC, admission and metrics Services, operator Deployment) and
    the monitoring pack (alerting rules, PrometheusRule, Grafana dashboard)."""
    root = deploy_dir.resolve().parent
    wanted = {deploy_dir / BUNDLE_FILE: bundle_text(deploy_dir)}
    wanted |= {root / path: text for path, text in generated_files().items()}
    if check:
        stale = [path for path, text in wanted.items()
                 if not path.is_file() or path.read_text(encoding="utf-8") != text]
        for path in stale:
            click.echo(f"{path} is stale (run `recluster bundle`)", err=True)
        if stale:
            raise SystemExit(1)
        click.echo("the bundle and the monitoring pack are up to date")
        return
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
