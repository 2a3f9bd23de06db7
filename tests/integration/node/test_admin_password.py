"""The cluster admin's password rotated on a real loopback cluster: a new password in the nodes'
credentials files (as when the REC's Secret changes) becomes the cluster's within seconds while a
client still using the old one never fails (the switch-over); the admin can also change it through
PUT /v1/users/password, proving the old one."""

from __future__ import annotations

import asyncio
import time

import pytest

from recluster.clients.cluster_api import ClusterApi, ClusterApiError
from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def accepted(url: str, username: str, password: str) -> bool:
    async with ClusterApi(url, username, password) as api:
        try:
            await api.cluster()
        except ClusterApiError as exc:
            if exc.status == 401:
                return False
            raise
    return True


async def test_the_admin_password_follows_the_credentials_file_and_the_old_one_keeps_working(  # type: ignore[no-untyped-def]
        make_cluster) -> None:
    cluster: LoopbackCluster = await make_cluster(3)
    user, old = cluster.username, cluster.password
    failures: list[str] = []
    calls = 0
    stop = asyncio.Event()

    async def old_client() -> None:  # a rigger or broker that has not read the new Secret yet
        nonlocal calls
        async with ClusterApi(cluster.url(1), user, old) as api:
            while not stop.is_set():
                try:
                    await api.bdbs()
                    calls += 1
                except ClusterApiError as exc:
                    failures.append(f"{exc.status} {exc.error_code}")
                await asyncio.sleep(0.1)

    writer = asyncio.create_task(old_client())
    started = time.monotonic()
    cluster.write_credentials("rotated-admin-pw-1")
    for index in range(3):
        deadline = time.monotonic() + 30
        while not await accepted(cluster.url(index), user, "rotated-admin-pw-1"):
            assert time.monotonic() < deadline, f"node {index} does not take the new password"
            await asyncio.sleep(0.3)
    took = time.monotonic() - started
    await asyncio.sleep(2)
    stop.set()
    await writer
    print(f"new admin password accepted everywhere {took:.1f} s after the files changed; "
          f"{calls} calls with the old one meanwhile, {len(failures)} failed")
    assert failures == [] and calls > 10
    assert not await accepted(cluster.url(2), user, "never-the-password")

    # the admin changes it through the REST API, proving the current one
    async with ClusterApi(cluster.url(2), user, "rotated-admin-pw-1") as api:
        with pytest.raises(ClusterApiError) as refused:
            await api.request("PUT", "/v1/users/password", {"username": user, "old_password": "wrong-old-pw",
                                                            "new_password": "rest-admin-pw-22"})
        assert refused.value.status == 401 and "wrong-old-pw" not in str(refused.value.body)
        await api.request("PUT", "/v1/users/password", {
            "username": user, "old_password": "rotated-admin-pw-1", "new_password": "rest-admin-pw-22"})
    assert await accepted(cluster.url(0), user, "rest-admin-pw-22")
    assert await accepted(cluster.url(0), user, "rotated-admin-pw-1")  # the switch-over
