"""`recluster operator`: run the operator (kopf, async) in the namespaces of WATCH_NAMESPACE."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from recluster.logs import configure_logging
from recluster.operator.startup import Settings


@click.command()
@click.option(
    "--log-format",
    type=click.Choice(["plain", "full", "json"]),
    default=None,
    help="the operator's log format (default: OPERATOR_LOG_FORMAT, else RECLUSTER_LOG_FORMAT, else plain); "
    "json: one JSON object per line, as every part writes them",
)
@click.option("--verbose", is_flag=True, help="debug logging")
def operator(log_format: str | None, verbose: bool) -> None:
    """Reconcile RedisEnterpriseClusters: children, cluster life through the REST API, status."""
    # kopf imports kubernetes_asyncio's generated client (some 60 MiB of models: most of the
    # operator's memory) when it is installed, only to recognise that client's objects and to log in
    # with it. The operator hands kopf neither (its login is runner.py's, from the same credentials
    # as the Kubernetes adapter): keep the package out of this process. The image does not install it
    # (a test-only dependency); the development virtualenv does, for the tests.
    sys.modules.setdefault("kubernetes_asyncio", None)  # type: ignore[arg-type]
    import kopf

    settings = Settings.from_environment()
    chosen = log_format or ("json" if settings.json_logs else "plain")
    # One line per watch event or HTTP request drowns what matters; --verbose brings them back.
    noisy = () if verbose else ("httpx", "httpcore", "kopf.objects", "aiohttp.access")
    if chosen == "json":  # the JSON lines of every part (recluster.logs): kopf's object as `object`
        configure_logging(logging.DEBUG if verbose else logging.INFO, "json", quiet=noisy)
        logging.getLogger("asyncio").setLevel(logging.DEBUG if verbose else logging.WARNING)
    else:
        kopf.configure(verbose=verbose, log_format=kopf.LogFormat[chosen.upper()])
        for name in noisy:
            logging.getLogger(name).setLevel(logging.WARNING)
    from recluster.operator.runner import run

    raise SystemExit(asyncio.run(run(settings)))
