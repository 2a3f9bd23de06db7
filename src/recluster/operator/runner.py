"""The operator process: health/metrics server, then the Lease (standby until held), then kopf.
Losing the Lease ends the process (exit 1): a replica that might no longer be the leader stops
acting at once and comes back as a standby.

What the handlers delegate to is made here once (context.py: the Context both reconcilers take, the
REC and REDB loops) and handed to kopf as its memo; the handlers of both kinds register on import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from recluster.api import rec as rec_api
from recluster.api import redb as redb_api
from recluster.clients.kubernetes import Kube
from recluster.clients.lease import LeaderLease, LeaseLost
from recluster.operator import metrics
from recluster.operator.context import Context, Services, services
from recluster.operator.finalizers import KOPF_FINALIZER
from recluster.operator.http import Readiness, start_http
from recluster.operator.loops import Loops
from recluster.operator.rec import handlers as rec_handlers
from recluster.operator.rec.reconcile import reconcile_rec
from recluster.operator.redb import handlers as redb_handlers
from recluster.operator.redb.reconcile import reconcile_redb
from recluster.operator.startup import ANNOTATION_PREFIX, FIELD_MANAGER, Settings
from recluster.operator.webhook import keep_ca_bundle, serving_files, webhook_server

log = logging.getLogger(__name__)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf adds no finalizer (no handler of ours needs one): the reconcilers hold their objects
    # with the contract's finalizers themselves (finalizers.py)
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = 30  # kopf's own events: warnings and errors only
    settings.watching.server_timeout = 300
    # the namespaces are given: no cluster-wide scanning of namespaces and CRDs (no ClusterRole)
    settings.scanning.disabled = True
    settings.watching.client_timeout = 330


@kopf.on.login()
def login(*, memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """kopf's credentials are the operator's own (clients/kubeconfig.py), read again at each login
    (kopf logs in again on a 401: a rotated service account token)."""
    config = services(memo).context.kube.config
    token = config.bearer(refresh=True)
    return kopf.ConnectionInfo(
        server=config.server,
        ca_path=config.ca_file,
        insecure=config.insecure or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        scheme="Bearer" if token else None,
        token=token,
    )


@kopf.on.cleanup()
async def stop_loops(*, memo: Any, **_: Any) -> None:
    await services(memo).stop()


def make_services(settings: Settings, kube: Kube) -> Services:
    """The context and both kinds' loops, once per operator run."""
    context = Context(settings=settings, kube=kube)

    async def rec(namespace: str, name: str) -> float | None:
        return await reconcile_rec(context, namespace, name)

    async def redb(namespace: str, name: str) -> float | None:
        return await reconcile_redb(context, namespace, name)

    return Services(context, Loops(rec_api.KIND, "REC", rec), Loops(redb_api.KIND, "REDB", redb))


async def run(settings: Settings) -> int:
    kube = await Kube.connect(FIELD_MANAGER, settings.kubeconfig)
    # ready once leading and, with the webhook, serving it (http.py): the admission Service then
    # never sends a webhook call to a standby replica, which does not listen
    readiness = Readiness(leading=not settings.leader_election, webhook=bool(settings.webhook_port))
    http = await start_http(settings.http_host, settings.http_port, readiness)

    def leading(now: bool) -> None:
        readiness.leading = now
        metrics.LEADER.set(1 if now else 0)

    lease = (
        LeaderLease(
            kube,
            settings.pod_namespace,
            settings.lease_name,
            settings.identity,
            max(5.0, settings.lease_seconds),
            on_change=leading,
        )
        if settings.leader_election
        else None
    )
    if lease is None:
        metrics.LEADER.set(1)  # the only replica: it acts
    made: Services | None = None
    try:
        if lease is not None:
            await lease.acquire()
        made = make_services(settings, kube)

        tasks: set[asyncio.Task[None]] = set()
        if settings.webhook_port:
            certfile, keyfile, ca_pem = serving_files(settings)
            server = webhook_server(settings, certfile, keyfile,
                                    on_serving=lambda serving: setattr(readiness, "webhook_serving", serving))

            async def configure_webhook(settings: kopf.OperatorSettings, **_: object) -> None:
                settings.admission.server = server

            rec_handlers.register_webhook()
            redb_handlers.register_webhook()
            kopf.on.startup()(configure_webhook)
            if settings.webhook_configuration:
                tasks.add(asyncio.create_task(keep_ca_bundle(kube, settings.webhook_configuration, ca_pem)))
        operator = asyncio.create_task(
            kopf.operator(
                namespaces=list(settings.namespaces),
                clusterwide=not settings.namespaces,
                standalone=True,
                memo=kopf.Memo(services=made),
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
        if made is not None:  # kopf's cleanup handler does it too, but not when kopf is cancelled
            await made.stop()
        await http.cleanup()
        await kube.close()
