"""The metrics endpoint's ASGI app: prometheus_client's exposition, with scrapes in worker threads.
(HTTPS itself, and a client that connects and sends nothing: tests/integration/security.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable

import httpx
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from recluster.node.metrics_server import MetricsApp

pytestmark = pytest.mark.unit


class Slow(Collector):
    """Blocks like `ClusterCollector` does when a shard does not answer (INFO with a 1 s timeout)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.threads: set[int] = set()

    def collect(self) -> Iterable[Metric]:
        self.threads.add(threading.get_ident())
        time.sleep(self.delay_s)
        node = GaugeMetricFamily("node_up", "up", labels=["cluster", "node"])
        node.add_metric(["c", "1"], 1.0)
        yield node
        bdb = GaugeMetricFamily("bdb_up", "up", labels=["cluster", "bdb"])
        bdb.add_metric(["c", "1"], 1.0)
        yield bdb


def client(collector: Collector) -> httpx.AsyncClient:
    registry = CollectorRegistry()
    registry.register(collector)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=MetricsApp(registry)),
                             base_url="https://127.0.0.1:8070")


async def test_serves_prometheus_text() -> None:
    async with client(Slow(0)) as http:
        response = await http.get("/metrics", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(response.headers["content-length"]) == len(response.content)
    assert 'node_up{cluster="c",node="1"} 1.0' in response.text
    assert 'bdb_up{bdb="1",cluster="c"} 1.0' in response.text


async def test_negotiates_like_prometheus_client() -> None:
    async with client(Slow(0)) as http:
        accept = {"accept": "application/openmetrics-text; version=1.0.0"}
        openmetrics = await http.get("/metrics", headers=accept)
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")
        zipped = await http.get("/metrics", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and "node_up" in zipped.text


async def test_only_get_reads_metrics() -> None:
    async with client(Slow(0)) as http:
        response = await http.post("/metrics", content=b"x")
    assert response.status_code == 405 and "node_up" not in response.text


async def test_a_slow_scrape_neither_blocks_the_event_loop_nor_queues_the_others() -> None:
    slow = Slow(0.5)
    async with client(slow) as http:
        started = time.monotonic()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while time.monotonic() - started < 0.4:
                ticks += 1
                await asyncio.sleep(0.05)

        responses, _ = await asyncio.gather(asyncio.gather(*(http.get("/metrics") for _ in range(4))), tick())
        elapsed = time.monotonic() - started
    assert all(r.status_code == 200 for r in responses)
    assert elapsed < 1.5, f"4 scrapes of 0.5 s took {elapsed:.2f} s: they ran one after the other"
    assert ticks >= 4, "the event loop stood still during the scrapes"
    assert len(slow.threads) > 1 and threading.get_ident() not in slow.threads
