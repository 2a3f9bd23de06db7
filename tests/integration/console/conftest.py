"""A real 3-node loopback cluster (the node daemon's devcluster launcher, as the node tests use) and
the system's headless Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from recluster.node.devcluster import LoopbackCluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"

playwright_api = pytest.importorskip("playwright.async_api")
if not Path(CHROMIUM).exists() or not shutil.which("redis-server"):  # pragma: no cover
    pytest.skip("needs /usr/bin/chromium and redis-server", allow_module_level=True)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LoopbackCluster]:
    # replicas of a killed node are not moved during the test (its roles move by Sentinel failover)
    # Sentinel's down-after is the product's default (5 s), not the devcluster's 2 s: with Chromium
    # rendering on a 2-core machine, 2 s made Sentinel fail a live master over mid-test.
    cluster = LoopbackCluster(3, tmp_path_factory.mktemp("console"), replica_move_grace_s=600.0,
                              down_after_ms=5000)
    try:
        await cluster.start(timeout_s=180)
        await cluster.wait_ready(timeout_s=120)
        yield cluster
    finally:
        cluster.stop()
        assert cluster.leftover_pids() == [], "processes left behind after teardown"


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (test-artifacts/ is gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest_asyncio.fixture(loop_scope="session")
async def browser(tmp_path: Path) -> AsyncIterator[object]:
    """Headless Chromium with a fresh profile directory (Playwright's persistent context)."""
    async with playwright_api.async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            ignore_https_errors=True, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            await context.close()
