"""/healthz (liveness: the event loop answers), /readyz (readiness: this replica does the work, see
`Readiness`) and /metrics (Prometheus), on one port. Runs from the start, standby included, so a
replica waiting for the Lease is alive and not restarted, and is scraped, but is not ready: the
admission Service sends the API server's webhook calls to the ready replica only."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recluster.operator.metrics import REGISTRY


@dataclass
class Readiness:
    """Ready = leading (holding the Lease, or no leader election) and, when this operator serves the
    admission webhook, serving it (its HTTPS server listening). A standby replica is not ready, so
    the `admission` Service, which selects every operator pod, has only the leader behind it."""

    leading: bool = False
    webhook: bool = False  # the operator serves the webhook ...
    webhook_serving: bool = False  # ... and its server listens

    def why_not(self) -> str | None:
        if not self.leading:
            return "standby: another replica holds the Lease"
        if self.webhook and not self.webhook_serving:
            return "the admission webhook server is not listening yet"
        return None


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"alive": True})


async def _metrics(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def start_http(host: str, port: int, readiness: Readiness | None = None) -> web.AppRunner:
    state = readiness or Readiness(leading=True)

    async def readyz(_: web.Request) -> web.Response:
        reason = state.why_not()
        if reason is None:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": reason}, status=503)

    app = web.Application()
    app.add_routes([web.get("/healthz", _healthz), web.get("/readyz", readyz), web.get("/metrics", _metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
