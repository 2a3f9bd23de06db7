"""Every asynchronous operation survives a SIGKILL of the broker: an update and a deprovision
interrupted right after their 202 finish once the broker is back. Also, while a provision runs,
other changes to the instance get the spec's ConcurrencyError."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.integration.broker.conftest import BrokerProcess, api_paused, plan_ids, poll, unfinished

pytestmark = pytest.mark.integration


async def test_update_and_deprovision_resume_after_a_kill(broker: BrokerProcess) -> None:
    instance_id = f"resume-{uuid.uuid4()}"
    url = f"/v2/service_instances/{instance_id}"
    incomplete = {"accepts_incomplete": "true"}
    async with broker.client() as client:
        service_id, plans = plan_ids((await client.get("/v2/catalog")).json())
        ids = {"service_id": service_id, "plan_id": plans["small"]}
        with api_paused(broker.cluster):  # the provision surely runs while the next requests come
            response = await client.put(url, params=incomplete,
                                        json=dict(ids, organization_guid="o", space_guid="s"))
            assert response.status_code == 202
            provision = response.json()["operation"]
            # the provision is running: other changes must wait
            response = await client.patch(url, params=incomplete, json={"service_id": service_id,
                                                                        "plan_id": plans["medium"]})
            assert (response.status_code, response.json().get("error")) == (422, "ConcurrencyError")
            response = await client.delete(url, params=dict(ids, **incomplete))
            assert (response.status_code, response.json().get("error")) == (422, "ConcurrencyError")
            assert (await client.get(url)).status_code == 404  # still being provisioned
        assert (await poll(client, instance_id, provision))["state"] == "succeeded"

        with api_paused(broker.cluster):
            response = await client.patch(url, params=incomplete,
                                          json={"service_id": service_id,
                                                "parameters": {"persistence": "aofAlways"}})
            assert response.status_code == 202, response.text
            update = response.json()["operation"]
            broker.kill()
            assert (update, "in progress") in unfinished(broker)
            broker.start()
    async with broker.client() as client:
        result = await poll(client, instance_id, update)
        assert result["state"] == "succeeded", result
        assert (await client.get(url)).json()["parameters"] == {"persistence": "aofAlways"}
        with api_paused(broker.cluster):
            response = await client.delete(url, params=dict(ids, **incomplete))
            assert response.status_code == 202
            deprovision = response.json()["operation"]
            broker.kill()
            assert (deprovision, "in progress") in unfinished(broker)
            broker.start()
    async with broker.client() as client:
        assert (await poll(client, instance_id, deprovision, gone_ok=True))["state"] == "gone"
    async with broker.cluster.api(0) as api:
        assert not [b for b in await api.bdbs() if instance_id in b["name"]]


async def test_concurrent_provisions_of_one_instance(broker: BrokerProcess) -> None:
    """Identical PUTs sent at once share one operation; a different one sent with them conflicts."""
    instance_id = f"twice-{uuid.uuid4()}"
    url = f"/v2/service_instances/{instance_id}"
    incomplete = {"accepts_incomplete": "true"}
    async with broker.client() as client:
        service_id, plans = plan_ids((await client.get("/v2/catalog")).json())
        body = {"service_id": service_id, "plan_id": plans["small"], "organization_guid": "o",
                "space_guid": "s"}
        with api_paused(broker.cluster):
            answers = await asyncio.gather(*(client.put(url, params=incomplete, json=body) for _ in range(4)))
            assert [a.status_code for a in answers] == [202] * 4
            assert len({a.json()["operation"] for a in answers}) == 1
            other = await client.put(url, params=incomplete, json=dict(body, plan_id=plans["medium"]))
            assert other.status_code == 409
        assert (await poll(client, instance_id, answers[0].json()["operation"]))["state"] == "succeeded"
        response = await client.delete(url, params={"service_id": service_id, "plan_id": plans["small"],
                                                    **incomplete})
        assert response.status_code == 202
        result = await poll(client, instance_id, response.json()["operation"], gone_ok=True)
        assert result["state"] == "gone"
