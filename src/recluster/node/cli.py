"""`recluster node` (run the daemon) and `recluster dev-cluster` (N nodes on loopback)."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from pathlib import Path

import click

from recluster.api.ports import API_PORT as DEFAULT_API_PORT
from recluster.api.ports import CCS_PORT as DEFAULT_CCS_PORT
from recluster.api.ports import METRICS_PORT as DEFAULT_METRICS_PORT
from recluster.api.ports import SENTINEL_PORT as DEFAULT_SENTINEL_PORT
from recluster.api.rec import DEFAULT_RESTART_GRACE_S, DEFAULT_SLAVE_HA_GRACE_PERIOD_S
from recluster.logs import FORMATS, LOG_FORMAT_ENV, configure_logging
from recluster.node.config import DEFAULT_DOWN_AFTER_MS, NodeConfig

ENV = "RECLUSTER_NODE_"


@click.command(context_settings={"auto_envvar_prefix": "RECLUSTER_NODE", "show_default": True})
@click.option("--addr", required=True, envvar=ENV + "ADDR", help="address every listener binds")
@click.option("--name", default="", envvar=ENV + "NAME", help="stable host name (default: the address)")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, envvar=ENV + "DATA_DIR")
@click.option("--api-port", type=int, default=DEFAULT_API_PORT, envvar=ENV + "API_PORT")
@click.option("--sentinel-port", type=int, default=DEFAULT_SENTINEL_PORT, envvar=ENV + "SENTINEL_PORT")
@click.option("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, envvar=ENV + "METRICS_PORT")
@click.option("--ccs-port", type=int, default=DEFAULT_CCS_PORT, envvar=ENV + "CCS_PORT")
@click.option("--tls-dir", type=click.Path(path_type=Path), default=None, envvar=ENV + "TLS_DIR",
              help="directory with cert.pem and key.pem (generated in DATA_DIR/tls when unset)")
@click.option("--service-domain", default="", envvar=ENV + "SERVICE_DOMAIN",
              help="DNS domain of the database Services (Kubernetes: <namespace>.svc.<cluster domain>); "
              "the database certificates carry those names")
@click.option("--credentials-file", type=click.Path(path_type=Path), default=None,
              envvar=ENV + "CREDENTIALS_FILE", help="directory with username/password files, or JSON")
@click.option("--down-after-ms", type=click.IntRange(min=500), default=DEFAULT_DOWN_AFTER_MS,
              envvar=ENV + "DOWN_AFTER_MS",
              help="how long a shard may not answer before Sentinel fails it over (Sentinel's "
                   "down-after-milliseconds; shorter: faster failover, more false ones under load)")
@click.option("--replica-move-grace", type=float, default=float(DEFAULT_SLAVE_HA_GRACE_PERIOD_S),
              envvar=ENV + "REPLICA_MOVE_GRACE",
              help="seconds a node lost without notice may be down before its replicas are re-created "
                   "elsewhere (until the cluster policy's slave_ha_grace_period is set)")
@click.option("--restart-grace", type=float, default=float(DEFAULT_RESTART_GRACE_S),
              envvar=ENV + "RESTART_GRACE",
              help="seconds at least that a node which announced a planned restart (SIGTERM) may be "
                   "down before its replicas are re-created elsewhere")
@click.option("--handoff-timeout", type=float, default=30.0, envvar=ENV + "HANDOFF_TIMEOUT",
              help="seconds SIGTERM waits for master shards to move to replicas (0: no hand-off)")
@click.option("--redis-server", default="/usr/bin/redis-server", envvar=ENV + "REDIS_SERVER")
@click.option("--redis-sentinel", default="/usr/bin/redis-sentinel", envvar=ENV + "REDIS_SENTINEL")
@click.option("--ccs-server", default="", envvar=ENV + "CCS_SERVER",
              help="the configuration store's redis-server (default: --redis-server)")
@click.option("--engine", "engines", multiple=True, envvar=ENV + "ENGINES",
              help="a database engine's server binary (repeat; the variable: paths separated by spaces); "
              "default: --redis-server, /usr/bin/valkey-server and /opt/engines/*/bin/*-server")
@click.option("--log-level", default="INFO", envvar=ENV + "LOG_LEVEL")
@click.option("--log-format", type=click.Choice(FORMATS), default="plain", envvar=LOG_FORMAT_ENV,
              help="plain lines, or one JSON object per line (the children's output lines too)")
@click.option("--test-backup-interval", type=click.FloatRange(min=0), default=0.0,
              envvar=ENV + "TEST_BACKUP_INTERVAL",
              help="for tests only: seconds between every database's scheduled backups instead of its "
              "backup_interval (0: the databases' own)")
def node(addr: str, name: str, data_dir: Path, api_port: int, sentinel_port: int, metrics_port: int,
         ccs_port: int, tls_dir: Path | None, service_domain: str, credentials_file: Path | None,
         down_after_ms: int,
         replica_move_grace: float, restart_grace: float, handoff_timeout: float, redis_server: str,
         redis_sentinel: str, ccs_server: str, engines: tuple[str, ...], log_level: str,
         log_format: str, test_backup_interval: float) -> None:
    """Run a cluster node: REST API (HTTPS), configuration store, sentinel, shards, metrics."""
    from recluster.node.processes import FORWARDER
    from recluster.node.runner import run_node

    configure_logging(log_level, log_format)
    FORWARDER.json_lines = log_format == "json"
    cfg = NodeConfig(addr=addr, name=name, data_dir=data_dir.resolve(), api_port=api_port,
                     sentinel_port=sentinel_port, metrics_port=metrics_port, ccs_port=ccs_port,
                     tls_dir=tls_dir.resolve() if tls_dir else None, service_domain=service_domain,
                     credentials_file=credentials_file,
                     down_after_ms=down_after_ms, replica_move_grace_s=replica_move_grace,
                     restart_grace_s=restart_grace,
                     redis_server=redis_server, redis_sentinel=redis_sentinel, ccs_server=ccs_server,
                     engines=tuple(engines), test_backup_interval_s=test_backup_interval)
    run_node(cfg, handoff_timeout=handoff_timeout)


@click.command("dev-cluster")
@click.option("--nodes", "size", type=int, default=3, show_default=True)
@click.option("--base", default="127.0.0.", show_default=True, help="loopback prefix; node i gets BASE(11+i)")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="data directories (default: a new temporary directory)")
@click.option("--down-after-ms", type=int, default=2000, show_default=True)
def dev_cluster(size: int, base: str, root: Path | None, down_after_ms: int) -> None:
    """Start an N-node cluster on loopback in the foreground; Ctrl-C stops every process."""
    from recluster.node.devcluster import LoopbackCluster
    from recluster.node.processes import write_private

    if not base.startswith("127."):
        raise click.BadParameter("only loopback (127.0.0.0/8) addresses", param_hint="--base")
    root = root or Path(tempfile.mkdtemp(prefix="recluster-dev-"))
    cluster = LoopbackCluster(size, root, base=base, down_after_ms=down_after_ms)
    try:
        asyncio.run(cluster.start())
        asyncio.run(cluster.wait_ready())
        first = cluster.nodes[0].addr
        click.echo(f"cluster '{cluster.cluster_name}' is up with {size} nodes (data in {root})")
        click.echo(f"  REST API:  https://{first}:{cluster.api_port}  user {cluster.username}  "
                   f"password in {root}/credentials")
        # created 0600 (not written first and restricted after: no moment when others may read it)
        write_private(root / "credentials", f"{cluster.username}\n{cluster.password}\n")
        click.echo(f"  try:       curl -sk -u {cluster.username}:$(sed -n 2p {root}/credentials) "
                   f"https://{first}:{cluster.api_port}/v1/nodes")
        click.echo("  sentinels: " + ", ".join(f"{a}:{p}" for a, p in cluster.sentinels()))
        click.echo(f"  metrics:   https://{first}:{cluster.metrics_port}/metrics  (the node's certificate, "
                   "no credentials: curl -sk)")
        click.echo("Ctrl-C stops the cluster.")
        stop = asyncio.Event()

        async def wait() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

        asyncio.run(wait())
    finally:
        cluster.stop()
        click.echo("stopped")
