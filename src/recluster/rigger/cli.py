"""`recluster rigger`: the services rigger of one REC (Deployment `<rec>-services-rigger`, run under
the REC's service account). Settings come from the environment the operator's Deployment sets
(RECLUSTER_RIGGER_*), or from the same-named flags."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import click

from recluster.api.naming import parse_service_types
from recluster.logs import FORMATS, LOG_FORMAT_ENV, configure_logging
from recluster.rigger.plan import Settings


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
@click.option(
    "--lease-name", envvar="RECLUSTER_RIGGER_LEASE_NAME", required=True, help="the replicas' Lease"
)
@click.option(
    "--identity", envvar="POD_NAME", default=None, help="who holds the Lease (default: the host name)"
)
@click.option(
    "--lease-seconds",
    envvar="RECLUSTER_RIGGER_LEASE_SECONDS",
    type=click.FloatRange(min=2.0),
    default=3.0,
    show_default=True,
    help="a standby takes over this long after the leader's last renewal",
)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None, help="outside a pod only")
@click.option("--verbose", is_flag=True)
@click.option("--log-format", type=click.Choice(FORMATS), default="plain", envvar=LOG_FORMAT_ENV,
              help="plain lines, or one JSON object per line")
def rigger(
    cluster: str,
    namespace: str,
    api_url: str,
    credentials_file: Path,
    ca_file: Path,
    database_service_type: str,
    service_naming: str,
    resync: float,
    lease_name: str,
    identity: str | None,
    lease_seconds: float,
    kubeconfig: str | None,
    verbose: bool,
    log_format: str,
) -> None:
    """Make one Service set per database and tag the pod that holds each master."""
    configure_logging(logging.DEBUG if verbose else logging.INFO, log_format, quiet=("httpx", "httpcore"))
    try:
        types = parse_service_types(database_service_type)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--database-service-type") from None
    from recluster.rigger.observe import RiggerConfig

    config = RiggerConfig(
        cluster=cluster,
        namespace=namespace,
        api_url=api_url,
        credentials_dir=credentials_file,
        ca_file=ca_file,
        settings=Settings(cluster=cluster, namespace=namespace, types=types, naming=service_naming),
        resync=resync,
    )
    from recluster.rigger.leadership import run

    asyncio.run(run(config, kubeconfig, lease_name, identity or socket.gethostname(), lease_seconds))
