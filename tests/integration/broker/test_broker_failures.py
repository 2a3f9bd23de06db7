"""When the cluster cannot be reached the operations fail the way the spec describes, after the
operation timeout: a failed provision (the instance is not fetchable, cannot be bound, may be
deleted for orphan mitigation), a failed deprovision that leaves the instance usable."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.integration.broker.conftest import BrokerProcess, plan_ids, poll

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def test_operations_fail_cleanly_when_the_cluster_is_unreachable(broker_cluster: LoopbackCluster,
                                                                      tmp_path: Path) -> None:
    # nothing listens on <base>.34:9443: every REST call is refused at once
    process = BrokerProcess(broker_cluster, tmp_path, host_number=33,
                            api_url=f"https://{broker_cluster.base}34:9443",
                            extra_args=("--operation-timeout", "2"))
    process.start()
    try:
        instance_id = f"unreachable-{uuid.uuid4()}"
        url = f"/v2/service_instances/{instance_id}"
        async with process.client() as client:
            service_id, plans = plan_ids((await client.get("/v2/catalog")).json())
            ids = {"service_id": service_id, "plan_id": plans["small"]}
            response = await client.put(url, params={"accepts_incomplete": "true"},
                                        json=dict(ids, organization_guid="o", space_guid="s"))
            assert response.status_code == 202
            result = await poll(client, instance_id, response.json()["operation"], timeout_s=60)
            assert result["state"] == "failed"
            assert "unreachable" in result["description"]
            assert "instance_usable" not in result  # a failed provision: nothing usable
            assert (await client.get(url)).status_code == 404
            response = await client.put(f"{url}/service_bindings/b1", json=ids)
            assert response.status_code == 422

            # orphan mitigation: the platform deletes it; that fails too (the instance was never usable)
            response = await client.delete(url, params=dict(ids, accepts_incomplete="true"))
            assert response.status_code == 202
            result = await poll(client, instance_id, response.json()["operation"], timeout_s=60)
            assert result["state"] == "failed" and result["instance_usable"] is False
    finally:
        process.stop()
    assert not process.alive()
