"""`recluster broker`: the Open Service Broker, over HTTPS only. Settings come from flags or the
environment the operator's Deployment sets (RECLUSTER_BROKER_*); credentials only from files (a
mounted secret), never from the command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import uvicorn
import yaml

from recluster.api.naming import BDB_NAME, REDIS_PORT, parse_service_types
from recluster.broker.app import BasicCredentials, BrokerSettings, create_app
from recluster.broker.binding_credentials import ServiceNaming
from recluster.broker.catalog import CatalogError, build_catalog
from recluster.http_limits import uvicorn_limits
from recluster.logs import FORMATS, LOG_FORMAT_ENV, AccessLog, configure_logging


class EscapeControlCharacters(logging.Filter):
    """Platforms choose instance and binding ids and the originating identity, and the broker logs
    them: their control and format characters (newline, bidi overrides) are logged escaped, so an id
    cannot write a line of its own into the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(escape_controls(a) if isinstance(a, str) else a for a in record.args)
        return True


def escape_controls(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def read_credentials(directory: Path, what: str) -> BasicCredentials:
    """`username` and `password` files of a mounted secret. Errors name the file, never its content."""
    if not directory.is_dir():
        raise click.UsageError(f"{what}: {directory} is not a directory holding 'username' and 'password'")
    values = []
    for name in ("username", "password"):
        path = directory / name
        try:
            value = path.read_text().strip("\r\n")
        except OSError as exc:
            raise click.UsageError(f"{what}: cannot read {path} ({exc.strerror})") from exc
        if not value:
            raise click.UsageError(f"{what}: {path} is empty")
        values.append(value)
    return BasicCredentials(values[0], values[1])


def load_catalog_config(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise click.UsageError(f"--catalog {path}: cannot read it ({exc})") from exc
    if data is not None and not isinstance(data, dict):
        raise click.UsageError(f"--catalog {path}: must be a mapping with 'plans' (and optionally 'service')")
    return data


@click.command("broker")
@click.option("--host", envvar="RECLUSTER_BROKER_HOST", default="0.0.0.0", show_default=True,  # noqa: S104
              help="Address to listen on.")
@click.option("--port", envvar="RECLUSTER_BROKER_PORT", type=int, default=8080, show_default=True)
@click.option("--api-url", envvar="RECLUSTER_BROKER_API_URL", required=True,
              help="The cluster's REST API, e.g. https://rec.ns.svc.cluster.local:9443")
@click.option("--credentials-dir", envvar="RECLUSTER_BROKER_CREDENTIALS_FILE", required=True,
              type=click.Path(path_type=Path),
              help="Directory with the REST API's 'username' and 'password' files (the REC secret).")
@click.option("--auth-dir", envvar="RECLUSTER_BROKER_AUTH_DIR", type=click.Path(path_type=Path),
              required=True,
              help="Directory with the 'username' and 'password' platforms use for Basic auth to the "
                   "broker (its own credential, never the REC admin's).")
@click.option("--data-dir", envvar="RECLUSTER_BROKER_DATA_DIR", required=True,
              type=click.Path(path_type=Path),
              help="Where the state database lives (the broker's volume).")
@click.option("--cluster", envvar="RECLUSTER_BROKER_CLUSTER", default="rec", show_default=True,
              help="The REC's name: names the service and derives stable catalog ids.")
@click.option("--namespace", envvar="POD_NAMESPACE", default="default", show_default=True)
@click.option("--catalog", "catalog_file", envvar="RECLUSTER_BROKER_CATALOG", type=click.Path(path_type=Path),
              default=None, help="YAML or JSON with 'plans' (and 'service'); default: small, medium, large.")
@click.option("--tls-cert", envvar="RECLUSTER_BROKER_TLS_CERT", type=click.Path(path_type=Path),
              required=True, help="The serving certificate (PEM): the broker serves HTTPS only.")
@click.option("--tls-key", envvar="RECLUSTER_BROKER_TLS_KEY", type=click.Path(path_type=Path),
              required=True, help="The certificate's private key (PEM).")
@click.option("--service-domain", envvar="RECLUSTER_BROKER_SERVICE_DOMAIN", default="",
              help="DNS domain of the database Services (Kubernetes: <namespace>.svc.<cluster domain>): "
                   "bindings name the database's Service there. Empty: the node holding the master.")
@click.option("--database-service-type", envvar="RECLUSTER_BROKER_DATABASE_SERVICE_TYPE",
              default="cluster_ip,headless", show_default=True,
              help="The REC's servicesRiggerSpec.databaseServiceType (bindings name the first).")
@click.option("--service-naming", envvar="RECLUSTER_BROKER_SERVICE_NAMING", default=BDB_NAME,
              show_default=True, type=click.Choice([BDB_NAME, REDIS_PORT]),
              help="The REC's servicesRiggerSpec.serviceNaming.")
@click.option("--api-ca", envvar="RECLUSTER_BROKER_CA_FILE", type=click.Path(path_type=Path), default=None,
              help="CA bundle to verify the REST API's certificate (default: not verified, the nodes' "
                   "certificate is self-signed).")
@click.option("--operation-timeout", type=float, default=600.0, show_default=True,
              help="Seconds before a provision, update or deprovision is declared failed.")
@click.option("--poll-interval", type=float, default=0.5, show_default=True,
              help="Seconds between two looks at a database the worker waits for.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", type=click.Choice(FORMATS), default="plain", show_default=True,
              envvar=LOG_FORMAT_ENV, help="plain lines, or one JSON object per line")
def broker(host: str, port: int, api_url: str, credentials_dir: Path, auth_dir: Path, data_dir: Path,
           cluster: str, namespace: str, catalog_file: Path | None, tls_cert: Path, tls_key: Path,
           service_domain: str, database_service_type: str, service_naming: str, api_ca: Path | None,
           operation_timeout: float, poll_interval: float, log_level: str, log_format: str) -> None:
    """Serve the Open Service Broker API v2.17 over the cluster's databases (HTTPS)."""
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if not path.is_file():
            raise click.UsageError(f"{option}: {path} is not a file")
    try:
        services = ServiceNaming(domain=service_domain.strip(), naming=service_naming,
                                 types=parse_service_types(database_service_type))
    except ValueError as exc:
        raise click.UsageError(f"--database-service-type: {exc}") from exc
    configure_logging(log_level, log_format).addFilter(EscapeControlCharacters())
    try:
        catalog = build_catalog(load_catalog_config(catalog_file), cluster=cluster, namespace=namespace)
    except CatalogError as exc:
        raise click.UsageError(f"--catalog: {exc}") from exc
    settings = BrokerSettings(
        catalog=catalog, data_dir=data_dir, api_url=api_url,
        api_credentials=read_credentials(credentials_dir, "--credentials-dir"),
        api_credentials_dir=credentials_dir,
        auth=read_credentials(auth_dir, "--auth-dir"),
        api_verify=str(api_ca) if api_ca else False, services=services, operation_timeout_s=operation_timeout,
        poll_s=poll_interval)
    click.echo(f"recluster broker on https://{host}:{port} for {api_url} "
               f"({len(catalog.plans)} plans, state in {data_dir})", err=True)
    # uvicorn's own lines through the root logger (log_config None); the access log is ours (no query
    # string, no header: recluster.logs)
    uvicorn.run(AccessLog(create_app(settings), "broker"), host=host, port=port, log_level=log_level,
                log_config=None, access_log=False,
                ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key), **uvicorn_limits())
