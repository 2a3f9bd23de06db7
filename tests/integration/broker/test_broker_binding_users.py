"""Each binding's own user on a real 3-node cluster, through the real broker process: the plan's
Redis ACL (a read-only plan reads and gets NOPERM on writes), a plan change moves the bindings to the
new plan's ACL, concurrent binds of one instance all keep their permission (roles_permissions is
rewritten whole), a bind and an unbind each interrupted by a SIGKILL of the broker finish with the
same credentials (bind repeated) or by themselves (unbind, at the next start), and a deprovision
removes the users of the bindings left."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.integration.broker.conftest import (
    BrokerProcess,
    api_paused,
    binding_grants,
    plan_ids,
    poll,
    redis_client,
    refused,
    stored_binding,
    until,
)

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

CATALOG = """
plans:
  - name: reader
    memory: 32MB
    redis_acl: Read Only
  - name: writer
    memory: 32MB
"""


async def works(uri: str, write: bool) -> bool:
    client = redis_client(uri)
    try:
        if write:
            await client.set("written", "by-a-binding")
        return await client.ping()  # type: ignore[no-any-return]
    finally:
        await client.aclose()


async def noperm_on_write(uri: str) -> bool:
    client = redis_client(uri)
    try:
        await client.get("anything")  # reading is allowed
        try:
            await client.set("anything", "x")
        except redis.exceptions.NoPermissionError:  # NOPERM
            return True
        return False
    finally:
        await client.aclose()


async def wait_for(check: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def test_binding_users_follow_the_plan_and_survive_restarts(broker_cluster: LoopbackCluster,
                                                                 tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    broker = BrokerProcess(broker_cluster, tmp_path, host_number=35, extra_args=("--catalog", str(catalog)))
    broker.start()
    instance_id = f"users-{uuid.uuid4()}"
    url = f"/v2/service_instances/{instance_id}"
    try:
        async with broker.client() as client:
            service_id, plans = plan_ids((await client.get("/v2/catalog")).json())
            ids = {"service_id": service_id, "plan_id": plans["reader"]}
            response = await client.put(url, params={"accepts_incomplete": "true"},
                                        json=dict(ids, organization_guid="o", space_guid="s"))
            assert response.status_code == 202, response.text
            assert (await poll(client, instance_id, response.json()["operation"]))["state"] == "succeeded"

            # a read-only plan: its binding reads and is refused writes
            response = await client.put(f"{url}/service_bindings/reader-1", json=ids)
            assert response.status_code == 201, response.text
            reader = response.json()["credentials"]
            await until("the reader's user on the shards", lambda: noperm_on_write(reader["uri"]))
            async with broker_cluster.api(0) as api:
                assert (await binding_grants(api, reader["username"]))["acl"] == "Read Only"

            # binds sent at once: every one keeps its permission (none lost to another's write)
            answers = await asyncio.gather(*(client.put(f"{url}/service_bindings/many-{i}", json=ids)
                                             for i in range(4)))
            assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
            many = [a.json()["credentials"] for a in answers]
            assert len({c["username"] for c in many}) == 4
            async with broker_cluster.api(0) as api:
                for credentials in many:
                    assert (await binding_grants(api, credentials["username"]))["acl"] == "Read Only"

            # a plan change moves every binding to the new plan's ACL: the reader now writes
            response = await client.patch(url, params={"accepts_incomplete": "true"},
                                          json={"service_id": service_id, "plan_id": plans["writer"]})
            assert response.status_code == 202, response.text
            assert (await poll(client, instance_id, response.json()["operation"]))["state"] == "succeeded"
            await until("the reader's user may write", lambda: works(reader["uri"], write=True))
            async with broker_cluster.api(0) as api:
                assert {(await binding_grants(api, c["username"]))["acl"] for c in many} == {"Full Access"}
            ids["plan_id"] = plans["writer"]

            # a bind interrupted by a SIGKILL once recorded (the REST API held): the repeat after the
            # restart finishes it with the password recorded first
            with api_paused(broker_cluster):
                pending = asyncio.ensure_future(client.put(f"{url}/service_bindings/killed", json=ids))
                await wait_for(lambda: stored_binding(broker, instance_id, "killed"), "the bind's record")
                broker.kill()
                with pytest.raises(Exception):  # noqa: B017 - whatever the client makes of a killed server
                    await pending
            record = stored_binding(broker, instance_id, "killed")
            assert record is not None and record["state"] == "creating"
        broker.start()
        async with broker.client() as client:
            response = await client.put(f"{url}/service_bindings/killed", json=ids)
            assert response.status_code == 201, response.text
            killed = response.json()["credentials"]
            assert killed["password"] == record["password"]
            await until("the interrupted binding's user works", lambda: works(killed["uri"], write=True))
            assert stored_binding(broker, instance_id, "killed")["state"] == "created"  # type: ignore[index]

            # an unbind interrupted by a SIGKILL finishes at the broker's next start by itself
            with api_paused(broker_cluster):
                pending = asyncio.ensure_future(client.delete(f"{url}/service_bindings/reader-1", params=ids))

                def deleting() -> bool:
                    found = stored_binding(broker, instance_id, "reader-1")
                    return found is not None and found["state"] == "deleting"
                await wait_for(deleting, "the unbind's record")
                broker.kill()
                with pytest.raises(Exception):  # noqa: B017
                    await pending
        broker.start()
        await wait_for(lambda: stored_binding(broker, instance_id, "reader-1") is None,
                       "the unbind finished after the restart")
        await until("the unbound reader refused", lambda: refused(reader["uri"]))
        async with broker_cluster.api(0) as api:
            assert await binding_grants(api, reader["username"]) == {}
        assert "resuming the unbind of binding reader-1" in broker.log()
        async with broker.client() as client:
            response = await client.delete(f"{url}/service_bindings/reader-1", params=ids)
            assert response.status_code == 410

            # deprovision with bindings left: their users go with the database
            response = await client.delete(url, params=dict(ids, accepts_incomplete="true"))
            assert response.status_code == 202
            result = await poll(client, instance_id, response.json()["operation"], gone_ok=True)
            assert result["state"] == "gone"
        async with broker_cluster.api(0) as api:
            for credentials in (*many, killed):
                assert await binding_grants(api, credentials["username"]) == {}
            assert not [b for b in await api.bdbs() if instance_id in b["name"]]
    finally:
        broker.stop()
    assert not broker.alive()
    log = broker.log()
    for credentials in (reader, *many, killed):
        assert credentials["password"] not in log, "the broker logged a binding's password"
