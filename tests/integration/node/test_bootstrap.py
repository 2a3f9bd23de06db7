"""Bootstrap of real node daemons on loopback into one cluster."""

from __future__ import annotations

import pytest

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration


async def test_three_nodes_form_one_cluster(cluster3: LoopbackCluster) -> None:
    for i in range(3):
        async with cluster3.api(i) as api:
            nodes = await api.nodes()
            assert [n["addr"] for n in nodes] == [n.addr for n in cluster3.nodes]
            assert all(n["status"] == "active" for n in nodes)
            status = (await api.bootstrap_status())["bootstrap_status"]
            assert status["state"] == "completed"
            cluster = await api.cluster()
            assert cluster["name"] == cluster3.cluster_name
            assert cluster["quorum"] == 2
    leaders = [n for n in nodes if n["role"] == "master"]
    assert len(leaders) == 1
