"""Every local cluster's addresses stay inside the reserved ranges and never overlap another's."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.local.layout import NODE_LIMIT, RESERVED_RANGE, SLOTS, Layout

pytestmark = pytest.mark.unit

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@given(st.integers(0, SLOTS - 1), st.integers(0, NODE_LIMIT - 1))
def test_every_address_is_in_the_reserved_ranges(slot: int, node: int) -> None:
    layout = Layout("c", slot)
    for network in (layout.subnet, layout.pod_cidr, layout.service_cidr):
        assert network.subnet_of(RESERVED_RANGE)
    for address in (
        layout.bridge_address,
        layout.node_address(node),
        layout.kubernetes_service_ip,
        layout.dns_service_ip,
    ):
        assert ipaddress.ip_address(address) in RESERVED_RANGE
    assert ipaddress.ip_address(layout.loopback) in LOOPBACK
    assert ipaddress.ip_address(layout.node_address(node)) in layout.subnet
    assert ipaddress.ip_address(layout.node_address(node)) not in layout.pod_cidr
    assert layout.pod_cidr.subnet_of(layout.subnet)


def test_slots_never_share_an_address_a_name_or_a_route_metric() -> None:
    layouts = [Layout("c", slot) for slot in range(SLOTS)]
    for a, b in itertools.combinations(layouts, 2):
        assert not a.subnet.overlaps(b.subnet)
        assert not a.service_cidr.overlaps(b.service_cidr)
        assert a.bridge != b.bridge and a.loopback != b.loopback
        assert a.unreachable_metric != b.unreachable_metric
        assert a.netns(0) != b.netns(0)
    assert all(len(layout.bridge) <= 15 for layout in layouts)  # Linux interface name limit


@pytest.mark.parametrize("slot", [-1, SLOTS])
def test_slot_out_of_range_is_refused(slot: int) -> None:
    with pytest.raises(ValueError, match="slot must be in"):
        Layout("c", slot)
