"""CredentialFiles: Basic auth read from a mounted Secret's files for every request, so a rotated
password is used from the next call on (the broker's REST calls)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from recluster.clients.cluster_api import ClusterApi, CredentialFiles

pytestmark = pytest.mark.unit


async def test_each_request_carries_the_files_current_credentials(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("admin@cluster\n")
    (tmp_path / "password").write_text("first-password")
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode())
        return httpx.Response(200, json={"name": "c"})

    transport = httpx.MockTransport(answer)
    async with ClusterApi("https://127.0.0.1:9443", "ignored", "ignored", transport=transport,
                          credentials=CredentialFiles(tmp_path)) as api:
        await api.cluster()
        (tmp_path / "password").write_text("rotated-password")
        await api.cluster()
    assert seen == ["admin@cluster:first-password", "admin@cluster:rotated-password"]
