"""The operator process: health/metrics server, then the Lease (standby until held), then kopf.
Losing the Lease ends the process (exit 1): a replica that might no longer be the leader stops
acting at once and comes back as a standby."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import kopf

from recluster.clients.kubernetes import Kube
from recluster.clients.lease import LeaderLease, LeaseLost
from recluster.operator import handlers, metrics
from recluster.operator.http import start_http
from recluster.operator.startup import FIELD_MANAGER, Runtime, Settings
from recluster.operator.webhook import keep_ca_bundle, serving_files, webhook_server

log = logging.getLogger(__name__)


async def run(settings: Settings) -> int:
    kube = await Kube.connect(FIELD_MANAGER, settings.kubeconfig)
    http = await start_http(settings.http_host, settings.http_port)
    lease = (
        LeaderLease(
            kube,
            settings.pod_namespace,
            settings.lease_name,
            settings.identity,
            max(5.0, settings.lease_seconds),
            on_change=metrics.LEADER.set,
        )
        if settings.leader_election
        else None
    )
    try:
        if lease is not None:
            await lease.acquire()
        runtime = Runtime(settings=settings, kube=kube)

        tasks: set[asyncio.Task[None]] = set()
        if settings.webhook_port:
            certfile, keyfile, ca_pem = serving_files(settings)

            async def configure_webhook(settings: kopf.OperatorSettings, **_: object) -> None:
                settings.admission.server = webhook_server(runtime.settings, certfile, keyfile)

            handlers.register_webhook()
            kopf.on.startup()(configure_webhook)
            if settings.webhook_configuration:
                tasks.add(asyncio.create_task(keep_ca_bundle(kube, settings.webhook_configuration, ca_pem)))
        operator = asyncio.create_task(
            kopf.operator(
                namespaces=list(settings.namespaces),
                clusterwide=not settings.namespaces,
                standalone=True,
                memo=kopf.Memo(runtime=runtime),
            )
        )
        tasks.add(operator)
        keeper = asyncio.create_task(lease.keep()) if lease is not None else None
        if keeper is not None:
            tasks.add(keeper)
        done, _ = await asyncio.wait({operator} | ({keeper} if keeper else set()),
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in tasks - {operator, keeper}:
            task.cancel()  # side tasks (the CA bundle keeper) end with the operator
        if keeper is not None and keeper in done:
            operator.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await operator
            try:
                keeper.result()
            except LeaseLost as exc:
                log.error("stopping: %s", exc)
            return 1
        if keeper is not None:
            keeper.cancel()
        operator.result()
        if lease is not None:
            await lease.release()
        return 0
    finally:
        await http.cleanup()
        await kube.close()
