"""The ports the operator's objects expose: the node ports (stated once in recluster.api.ports) and
the service broker's."""

from __future__ import annotations

from recluster.api.ports import API_PORT, METRICS_PORT, SENTINEL_PORT, SENTINEL_TLS_PORT
from recluster.api.ports import CONSOLE_PORT as UI_PORT

BROKER_PORT = 8080  # Open Service Broker API (the broker's --port default)

__all__ = ["API_PORT", "BROKER_PORT", "METRICS_PORT", "SENTINEL_PORT", "SENTINEL_TLS_PORT", "UI_PORT"]
