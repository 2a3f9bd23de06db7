"""`kubectl recluster ...` (the executable `kubectl-recluster`, and `recluster admin ...`): the admin
CLI's commands, options and errors. Thin: each command is a module of recluster.admin.

Every command takes kubectl's --kubeconfig, --context and -n/--namespace (before or after the
command's name), and --tunnel/--direct (how to reach pods and Services: by default directly when
this machine can, else through a tunnel made of kubectl exec)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from recluster import __version__
from recluster.admin import connect as connect_mod
from recluster.admin import failover as failover_mod
from recluster.admin import logs as logs_mod
from recluster.admin import report as report_mod
from recluster.admin import status as status_mod
from recluster.admin.errors import AdminError
from recluster.admin.session import DIRECT, TUNNEL, Options, Session

T = TypeVar("T")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
OUTPUT = click.Choice(["table", "json"])
stderr = Console(stderr=True, highlight=False)


# --- options every command takes ----------------------------------------------------------------


def _options(ctx: click.Context) -> Options:
    return ctx.ensure_object(Options)


def _setter(attribute: str, check: Callable[[str], None] | None = None) -> Callable[..., None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return
        if check is not None:
            try:
                check(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        setattr(_options(ctx), attribute, value)

    return callback


def _namespace_rule(value: str) -> None:
    if not DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a namespace name: lowercase letters, digits and '-', starting "
                         "and ending with a letter or digit, at most 63 characters")


def _namespace_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            _namespace_rule(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def _via(ctx: click.Context, param: click.Parameter, value: bool | None) -> None:
    if value is not None:
        _options(ctx).via = TUNNEL if value else DIRECT


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    """kubectl's connection options and how to reach the cluster, on the group and every command."""
    decorators = [
        click.option("--kubeconfig", metavar="PATH", expose_value=False, callback=_setter("kubeconfig"),
                     help="Kubeconfig file (default: KUBECONFIG, else ~/.kube/config)."),
        click.option("--context", metavar="NAME", expose_value=False, callback=_setter("context"),
                     help="Kubeconfig context (default: the current one)."),
        click.option("-n", "--namespace", metavar="NAME", expose_value=False,
                     callback=_setter("namespace", _namespace_rule),
                     help="Namespace of the REC (default: the context's, else 'default')."),
        click.option("--tunnel/--direct", "via", default=None, expose_value=False, callback=_via,
                     help="Always reach pods through a tunnel made of kubectl exec / never "
                     "(default: directly when reachable, else the tunnel)."),
        click.option("--request-timeout", type=click.FloatRange(min=1, max=600), expose_value=False,
                     callback=_setter("request_timeout"), metavar="SECONDS",
                     help="Timeout of one REST API call (default 30)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _name(kind: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and not DNS_SUBDOMAIN.match(value):
            raise click.BadParameter(
                f"{value!r} is not a {kind} name: lowercase letters, digits, '-' and '.', starting and "
                "ending with a letter or digit", ctx=ctx, param=param)
        return value

    return check


def _database(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip() or len(value) > 253 or any(c.isspace() or not c.isprintable() for c in value):
        raise click.BadParameter(f"{value!r}: name a REDB, a database of the cluster or its uid (db:3)",
                                 ctx=ctx, param=param)
    return value


def progress(text: str) -> None:
    stderr.print(f"[dim]{text}[/dim]", soft_wrap=True)


def run(work: Callable[[Session], Awaitable[T]]) -> T:
    """Open a session with the options given, run `work`, close; AdminError -> exit 1 with its words."""
    options = _options(click.get_current_context())

    async def main() -> T:
        session = Session.open(options)
        try:
            return await work(session)
        finally:
            await session.close()

    try:
        return asyncio.run(main())
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


# --- the commands -----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubectl-recluster")
@common
def admin() -> None:
    """Operate recluster clusters (RECs) from your kubeconfig: status, failover, connect, logs, report."""


@admin.command()
@common
@click.argument("rec", required=False, callback=_name("REC"))
@click.option("-o", "--output", type=OUTPUT, default="table", show_default=True,
              help="Tables, or JSON for scripts.")
def status(rec: str | None, output: str) -> None:
    """The REC, its nodes, databases, shards, masters and endpoints, and what is unhealthy.

    REC defaults to the only REC of the namespace."""
    document = run(lambda session: _status(session, rec))
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        terminal = sys.stdout.isatty()  # a pipe or a file gets the whole width: nothing cut
        console = Console(highlight=False, width=None if terminal else 240, soft_wrap=not terminal)
        console.print(status_mod.render_status(document))


async def _status(session: Session, rec: str | None) -> dict[str, Any]:
    return status_mod.build_status(await status_mod.gather(session, rec))


@admin.command()
@common
@click.argument("database", callback=_database)
@click.option("--rec", callback=_name("REC"), help="The REC (default: the only one of the namespace).")
@click.option("--timeout", type=click.FloatRange(min=1, max=3600), default=120, show_default=True,
              metavar="SECONDS", help="How long to wait for the new master and the Services to follow.")
@click.option("-o", "--output", type=OUTPUT, default="table", show_default=True)
def failover(database: str, rec: str | None, timeout: float, output: str) -> None:
    """A planned failover of DATABASE (a REDB, a database name or db:<uid>): its replica becomes the
    master. Waits until the cluster reports the new master and the Services lead to it."""
    result = run(lambda session: failover_mod.failover(session, rec, database, timeout, progress))
    click.echo(json.dumps(result, indent=2) if output == "json" else failover_mod.describe(result))


@admin.command(context_settings={"ignore_unknown_options": True})
@common
@click.argument("database", callback=_database)
@click.argument("redis_cli_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--rec", callback=_name("REC"), help="The REC (default: the only one of the namespace).")
@click.option("--redis-cli", "redis_cli", default=lambda: os.environ.get("REDIS_CLI", "redis-cli"),
              show_default="REDIS_CLI, else redis-cli", help="The redis-cli to run.")
@click.option("--dry-run", is_flag=True, help="Print the command (the password only named) and exit.")
def connect(
    database: str, redis_cli_args: tuple[str, ...], rec: str | None, redis_cli: str, dry_run: bool
) -> None:
    """redis-cli connected to DATABASE (a REDB, a database name or db:<uid>), with its password (in
    REDISCLI_AUTH, never on the command line) and TLS. Arguments after `--` go to redis-cli:

        kubectl recluster connect mydb -- INFO replication"""
    if not dry_run and not _executable(redis_cli):
        raise click.BadParameter(f"{redis_cli!r} is not an executable on PATH (install redis-tools, or give "
                                 "--redis-cli PATH)", param_hint="'--redis-cli'")
    code = run(lambda session: connect_mod.connect(
        session, rec, database, redis_cli, redis_cli_args, dry_run, progress, click.echo))
    sys.exit(code)


def _executable(name: str) -> bool:
    return shutil.which(name) is not None


def _process(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[logs_mod.Process]:
    try:
        return [logs_mod.parse_process(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return logs_mod.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@admin.command()
@common
@click.argument("target", required=False, callback=_name("pod or REC"))
@click.option("-p", "--process", "processes", multiple=True, callback=_process, metavar="NAME",
              help="Only this process (repeatable): daemon, ccs, sentinel, sentinel-tls, shards, "
              "shard:<db uid>.")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines.")
@click.option("--since", callback=_since, metavar="DURATION",
              help="Only lines newer than this (30s, 5m, 1h).")
@click.option("--tail", type=click.IntRange(min=0), metavar="LINES",
              help="Only the last LINES lines of each pod (counted before the --process filter).")
@click.option("--previous", is_flag=True, help="The log of the container's previous run (after a restart).")
@click.option("--timestamps", is_flag=True, help="Each line with its time.")
def logs(
    target: str | None, processes: list[logs_mod.Process], follow: bool, since: int | None,
    tail: int | None, previous: bool, timestamps: bool,
) -> None:
    """Every process of a node (TARGET: a node pod), or of every node of a REC (TARGET: the REC;
    default the only one of the namespace; each line then starts with its pod)."""
    if follow and previous:
        raise click.UsageError("--follow and --previous exclude each other: a previous run has ended")
    request = logs_mod.LogRequest(processes, follow, since, tail, previous, timestamps)

    def write(line: str) -> None:
        sys.stdout.write(line + "\n")
        if follow:
            sys.stdout.flush()

    run(lambda session: logs_mod.show(session, target, request, write))


def _out(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if path.exists() and not path.is_dir() and not report_mod.is_archive(path):
        raise click.BadParameter(f"{value}: a .tar.gz file to create, or a directory", ctx=ctx, param=param)
    if path.exists() and report_mod.is_archive(path):
        raise click.BadParameter(f"{value} exists: name a new file", ctx=ctx, param=param)
    return path


@admin.command()
@common
@click.argument("rec", required=False, callback=_name("REC"))
@click.option("--out", callback=_out, metavar="PATH",
              help="A .tar.gz to write, or a directory (default: ./recluster-report-<rec>-<time>.tar.gz).")
@click.option("--operator-namespace", callback=_namespace_value, metavar="NAME",
              help="Where the operator runs (default: the REC's namespace).")
@click.option("--log-limit-bytes", type=click.IntRange(min=1024), default=report_mod.LOG_LIMIT_BYTES,
              show_default=True, help="At most this much of each container's log (its end).")
def report(rec: str | None, out: Path | None, operator_namespace: str | None, log_limit_bytes: int) -> None:
    """A support bundle of REC (default: the only one of the namespace): its objects, events, pod and
    operator logs and REST views, with no secret values in it."""
    path, summary = run(lambda session: report_mod.report(
        session, rec, out, operator_namespace, log_limit_bytes, progress))
    for error in summary["errors"]:
        progress(f"not collected: {error}")
    problems = summary["health"]["problems"]
    click.echo(f"{path} ({len(summary['files'])} files; health: "
               f"{f'{len(problems)} problem(s)' if problems else 'OK'})")


def main() -> None:
    """The `kubectl-recluster` executable (kubectl finds it on PATH as the plugin `recluster`)."""
    admin(prog_name="kubectl recluster")


if __name__ == "__main__":
    main()
