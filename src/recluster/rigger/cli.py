"""`recluster rigger`: the services rigger of one REC (Deployment `<rec>-services-rigger`, run under
the REC's service account). Settings come from the environment the operator's Deployment sets
(RECLUSTER_RIGGER_*), or from the same-named flags."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from recluster.rigger.plan import Settings, parse_service_types


@click.command()
@click.option("--cluster", envvar="RECLUSTER_RIGGER_CLUSTER", required=True, help="the REC's name")
@click.option("--namespace", envvar="POD_NAMESPACE", required=True, help="the REC's namespace")
@click.option("--api-url", envvar="RECLUSTER_RIGGER_API_URL", required=True, help="the cluster's REST API")
@click.option(
    "--credentials-file",
    envvar="RECLUSTER_RIGGER_CREDENTIALS_FILE",
    required=True,
    type=click.Path(path_type=Path),
    help="directory with `username` and `password` files (the REC secret)",
)
@click.option(
    "--ca-file",
    envvar="RECLUSTER_RIGGER_CA_FILE",
    required=True,
    type=click.Path(path_type=Path),
    help="the cluster's CA (the only one trusted)",
)
@click.option(
    "--database-service-type", envvar="RECLUSTER_RIGGER_DATABASE_SERVICE_TYPE", default="cluster_ip,headless"
)
@click.option(
    "--service-naming",
    envvar="RECLUSTER_RIGGER_SERVICE_NAMING",
    type=click.Choice(["bdb_name", "redis-port"]),
    default="bdb_name",
)
@click.option(
    "--resync", envvar="RECLUSTER_RIGGER_RESYNC_SECONDS", type=float, default=5.0, show_default=True
)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None, help="outside a pod only")
@click.option("--verbose", is_flag=True)
def rigger(
    cluster: str,
    namespace: str,
    api_url: str,
    credentials_file: Path,
    ca_file: Path,
    database_service_type: str,
    service_naming: str,
    resync: float,
    kubeconfig: str | None,
    verbose: bool,
) -> None:
    """Make one Service set per database and tag the pod that holds each master."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in ("kubernetes_asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        types = parse_service_types(database_service_type)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--database-service-type") from None
    from recluster.rigger.loop import RiggerConfig

    config = RiggerConfig(
        cluster=cluster,
        namespace=namespace,
        api_url=api_url,
        credentials_dir=credentials_file,
        ca_file=ca_file,
        settings=Settings(cluster=cluster, namespace=namespace, types=types, naming=service_naming),
        resync=resync,
    )
    asyncio.run(_run(config, kubeconfig))


async def _run(config: object, kubeconfig: str | None) -> None:
    from recluster.clients.kubernetes import Kube
    from recluster.rigger.loop import Rigger, RiggerConfig

    assert isinstance(config, RiggerConfig)
    kube = await Kube.connect("services-rigger", kubeconfig)
    try:
        await Rigger(config, kube).run()
    finally:
        await kube.close()
