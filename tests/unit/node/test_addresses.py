"""The leader learns where a node is now without putting DNS on any hot path: its own address at
once, a silent named node's address from one background lookup at a time."""

from __future__ import annotations

import asyncio

import pytest

from recluster.node.addresses import AddressWatch
from recluster.node.records import NodeRecord

pytestmark = pytest.mark.unit


def node(uid: int, name: str, addr: str) -> NodeRecord:
    return NodeRecord(uid=uid, name=name, addr=addr, api_port=1, ccs_port=2, sentinel_port=3, metrics_port=4)


async def test_this_node_is_recorded_at_its_own_address_at_once() -> None:
    watch = AddressWatch()
    assert watch.moved([node(1, "me", "127.0.0.5")], {1}, "me", "127.0.0.6") == {1: "127.0.0.6"}


async def test_a_silent_named_node_is_looked_up_once_in_the_background() -> None:
    watch = AddressWatch()
    nodes = [node(1, "me", "127.0.0.5"), node(2, "localhost", "127.0.0.99")]
    assert watch.moved(nodes, {1}, "me", "127.0.0.5") == {}  # the lookup starts, nothing waits for it
    assert watch.moved(nodes, {1}, "me", "127.0.0.5") == {}
    assert len(watch._lookups) == 1, "a second lookup of the same node started while one runs"
    await asyncio.wait_for(asyncio.gather(*watch._lookups.values()), 10)
    assert watch.moved(nodes, {1}, "me", "127.0.0.5")[2] in ("127.0.0.1", "::1")
    watch.cancel()


async def test_nodes_that_answer_or_have_no_name_are_not_looked_up() -> None:
    watch = AddressWatch()
    nodes = [node(1, "me", "127.0.0.5"), node(2, "localhost", "127.0.0.2"), node(3, "127.0.0.3", "127.0.0.3")]
    assert watch.moved(nodes, {1, 2}, "me", "127.0.0.5") == {}
    assert watch._lookups == {}


async def test_a_confirmed_announced_address_is_recorded_without_a_lookup() -> None:
    watch = AddressWatch()
    nodes = [
        node(1, "me", "127.0.0.5"),
        node(2, "localhost", "127.0.0.99"),
        node(3, "localhost", "127.0.0.3"),
    ]
    confirmed = {2: "127.0.0.42", 3: "127.0.0.3"}  # node 3 announced the address it is recorded at
    assert watch.moved(nodes, {1, 3}, "me", "127.0.0.5", confirmed) == {2: "127.0.0.42"}
    assert watch._lookups == {}, "a node whose new address is known was looked up by name"
