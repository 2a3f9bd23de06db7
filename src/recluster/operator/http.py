"""/healthz (liveness: the event loop answers) and /metrics (Prometheus), on one port. Runs from
the start, standby included, so a replica waiting for the Lease is alive and not restarted."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recluster.operator.metrics import REGISTRY


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"alive": True})


async def _metrics(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def start_http(host: str, port: int) -> web.AppRunner:
    app = web.Application()
    app.add_routes([web.get("/healthz", _healthz), web.get("/metrics", _metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
