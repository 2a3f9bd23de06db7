"""`recluster local ...`: the local Kubernetes cluster for development, tests and the demo."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console

from recluster.install.bundle import NAMESPACE_NAME
from recluster.local.cluster import DEFAULT_NAME, LocalCluster, default_state_dir
from recluster.local.helm import ensure_helm
from recluster.local.kubebuild import ensure_kube
from recluster.local.layout import NODE_LIMIT
from recluster.local.paths import repo_dir
from recluster.local.run import CommandError, keep_output
from recluster.local.s3server import endpoint_text, ensure_s3_server, running_endpoint, start_s3_server
from recluster.local.sample import SAMPLE_NAMESPACE, SampleError, connection_text, install_sample

DEFAULT_NODES = 3

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="RECLUSTER_LOCAL_STATE",
    help="Where the cluster keeps its state (default: ~/.cache/recluster/clusters/<name>).",
)
name_option = click.option("--name", default=DEFAULT_NAME, show_default=True, help="The cluster's name.")


def _console() -> Console:
    return Console(stderr=True)


def _existing(state_dir: Path | None, name: str) -> LocalCluster:
    directory = state_dir or default_state_dir(name)
    cluster = LocalCluster.load(directory)
    if cluster is None:
        raise click.ClickException(f"no local cluster in {directory}; start one with `recluster local up`")
    return cluster


@contextlib.contextmanager
def _reported(what: str) -> Iterator[None]:
    """Every failure ends the command with what failed, the last lines of output and where the full
    output is, and a non-zero exit (click prints a ClickException and exits 1), never a traceback."""
    try:
        yield
    except click.ClickException:
        raise
    except (CommandError, SampleError) as exc:
        raise click.ClickException(f"{what} failed: {exc}") from exc
    except Exception as exc:
        log = keep_output(["recluster-local-" + what.replace(" ", "-")], "", traceback.format_exc())
        where = f"\nfull traceback: {log}" if log else ""
        raise click.ClickException(f"{what} failed: {type(exc).__name__}: {exc}{where}") from exc


@click.group()
def local() -> None:
    """A real local Kubernetes cluster built from Go modules (no Docker, no kind)."""


@local.command()
@state_dir_option
@name_option
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for each component.")
@click.option(
    "--nodes",
    type=click.IntRange(0, NODE_LIMIT),
    default=None,
    help="How many nodes (kubelet, containerd and kube-proxy, each in its own network namespace); "
    "default: 3 for a new cluster, as many as before for an existing one.",
)
@click.option("--namespace", default=SAMPLE_NAMESPACE, show_default=True,
              help="Where the operator and the sample REC and REDB go.")
@click.option("--sample/--no-sample", default=None,
              help="Install the operator from deploy/bundle.yaml and apply the examples (default: when the "
              "cluster has the 3 nodes the sample REC needs).")
@click.option("--show-secrets/--hide-secrets", default=None,
              help="Print the database and console passwords (default: only on an interactive terminal; "
              "otherwise the command that reads them).")
@click.option("--with-s3", is_flag=True, default=False,
              help="Also run the S3-compatible server of tools/s3 on the cluster's bridge address (pods "
              "reach it), for backups; prints its endpoint and credentials.")
def up(state_dir: Path | None, name: str, timeout: float, nodes: int | None, namespace: str,
       sample: bool | None, show_secrets: bool | None, with_s3: bool) -> None:
    """Build what is missing, start the local cluster, install the operator and a sample REC and
    REDB, and say how to connect (harmless when it already runs)."""
    console = _console()
    if not NAMESPACE_NAME.match(namespace):
        raise click.BadParameter("must be a DNS-1123 label (lower case letters, digits, '-')",
                                 param_hint="'--namespace'")
    with _reported("local up"):
        directory = state_dir or default_state_dir(name)
        if nodes is None:
            existing = LocalCluster.load(directory)
            nodes = existing.node_count if existing is not None else DEFAULT_NODES
        if sample and nodes < DEFAULT_NODES:
            raise click.BadParameter(f"the sample REC needs {DEFAULT_NODES} nodes (got {nodes}); "
                                     "leave out --sample for a smaller cluster", param_hint="'--nodes'")
        if sample is None:
            sample = nodes >= DEFAULT_NODES
            if not sample:
                console.print(f"{nodes} node(s): no sample REC and REDB (they need {DEFAULT_NODES} nodes)")
        cluster = LocalCluster.create(directory, name)
        cluster.up(console, timeout=timeout, nodes=nodes)
        reveal = sys.stdout.isatty() if show_secrets is None else show_secrets
        if with_s3:
            click.echo(_s3_server(cluster, console, reveal))
        kubectl = "bin/kubectl" if state_dir is None and name == DEFAULT_NAME else (
            f"{cluster.kube_dir() / 'kubectl'} --kubeconfig {cluster.kubeconfig_path}")
        if not sample:
            console.print(f"\n{kubectl} get nodes")
            return
        installed, connection = install_sample(cluster, Path(repo_dir()), namespace, console)
    click.echo(connection_text(installed, connection, kubectl, reveal))


def _s3_server(cluster: LocalCluster, console: Console, reveal: bool) -> str:
    """The cluster's S3 server (started unless it runs), recorded in the cluster's run directory so
    that `local down` stops it; its buckets stay in the state directory."""
    state = cluster.state_dir / "s3"
    endpoint = running_endpoint(state, run_dir=cluster.paths.run)
    if endpoint is None:
        binary = ensure_s3_server(console)
        _, endpoint = start_s3_server(binary, state, host=cluster.layout.bridge_address,
                                      run_dir=cluster.paths.run)
    return endpoint_text(endpoint, state / "s3.json", reveal)


@local.command()
@state_dir_option
@name_option
def down(state_dir: Path | None, name: str) -> None:
    """Stop everything the local cluster started; its state stays for the next `up`."""
    cluster = LocalCluster.load(state_dir or default_state_dir(name))
    if cluster is None:
        _console().print("no local cluster to stop")
        return
    with _reported("local down"):
        cluster.down(_console())


@local.command()
@state_dir_option
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(state_dir: Path | None, name: str, as_json: bool) -> None:
    """What runs, where, and where its logs are."""
    info = _existing(state_dir, name).status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"cluster {info['name']}: apiserver {info['apiserver']} ready={info['ready']}")
    click.echo(f"kubeconfig: {info['kubeconfig']}")
    procs = info["processes"]
    assert isinstance(procs, dict)
    for proc_name, proc in procs.items():
        state = f"pid {proc['pid']}" if proc["pid"] else "not running"
        click.echo(f"  {proc_name:<26} {state:<14} {proc['log']}")
    node_list = info["nodes"]
    assert isinstance(node_list, list)
    for entry in node_list:
        state = "running" if entry["running"] else "stopped"
        if entry["isolated"]:
            state += ", isolated"
        click.echo(f"  node {entry['name']:<21} {entry['address']:<14} pods {entry['pod_cidr']:<18} {state}")


@local.command()
@state_dir_option
@name_option
def kubeconfig(state_dir: Path | None, name: str) -> None:
    """Print the path of the admin kubeconfig."""
    click.echo(str(_existing(state_dir, name).kubeconfig_path))


@local.group()
def node() -> None:
    """Fail and restore a node: stop, start, isolate (cut its network), heal."""


def _node_action(action: str, help_text: str) -> None:
    @node.command(name=action, help=help_text)
    @state_dir_option
    @name_option
    @click.argument("node_name")
    def command(state_dir: Path | None, name: str, node_name: str) -> None:
        cluster = _existing(state_dir, name)
        with _reported(f"node {action}"):
            if action == "stop":
                cluster.stop_node(node_name)
            elif action == "start":
                cluster.start_node(node_name, _console())
            elif action == "isolate":
                cluster.isolate_node(node_name)
            else:
                cluster.heal_node(node_name)
        click.echo(f"{cluster.node(node_name).name}: {action} done")


_node_action("stop", "Kill the node's kubelet, containerd and every container, as when a machine is lost.")
_node_action("start", "Start a stopped node again and wait until it is Ready.")
_node_action("isolate", "Cut the node off the network: the other nodes, the apiserver and the host.")
_node_action("heal", "Reconnect an isolated node.")


@local.command()
@state_dir_option
@name_option
@click.argument("dns_name")
def resolve(state_dir: Path | None, name: str, dns_name: str) -> None:
    """Resolve a cluster name (e.g. rec.default.svc.cluster.local) through the cluster's DNS."""
    cluster = _existing(state_dir, name)
    with _reported("resolve"):
        for address in cluster.resolve(dns_name):
            click.echo(address)


@local.command()
def build() -> None:
    """Build (or find in the cache) the Kubernetes components, Helm and the S3 server of tools/s3;
    print the components' directory."""
    with _reported("local build"):
        click.echo(str(ensure_kube(_console())))
        ensure_helm(_console())
        ensure_s3_server(_console())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(local())
