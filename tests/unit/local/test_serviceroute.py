"""The host's route to Services moves off a node whose kube-proxy fails, and only then."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from recluster.local.kubeproxy import kube_proxy_config
from recluster.local.layout import Layout
from recluster.local.serviceroute import HEALTH_PORT, choose_gateway

NODES = ["198.18.0.10", "198.18.0.11", "198.18.0.12"]


def test_a_healthy_gateway_is_kept_even_when_an_earlier_node_is_healthy() -> None:
    assert choose_gateway(NODES[2], NODES, lambda _: True) == NODES[2]


def test_a_failed_gateway_gives_way_to_the_first_healthy_node() -> None:
    assert choose_gateway(NODES[0], NODES, lambda a: a == NODES[2]) == NODES[2]


def test_with_no_healthy_node_the_route_is_left_alone() -> None:
    assert choose_gateway(NODES[1], NODES, lambda _: False) is None


def test_a_gateway_that_is_no_longer_a_node_is_replaced() -> None:
    assert choose_gateway("198.18.0.13", NODES, lambda _: True) == NODES[0]


@given(
    current=st.one_of(st.none(), st.sampled_from(NODES)),
    healthy=st.sets(st.sampled_from(NODES)),
)
def test_the_choice_is_always_a_healthy_node_or_nothing(current: str | None, healthy: set[str]) -> None:
    chosen = choose_gateway(current, NODES, healthy.__contains__)
    assert (chosen is None) == (not healthy)
    assert chosen is None or chosen in healthy
    if current in healthy:
        assert chosen == current  # no churn while the gateway works


def test_kube_proxy_health_is_served_on_the_node_address_the_host_probes() -> None:
    layout = Layout("c", 2)
    config = kube_proxy_config(layout, 1, kubeconfig=Path("/k"))
    assert config["healthzBindAddress"] == f"{layout.node_address(1)}:{HEALTH_PORT}"
