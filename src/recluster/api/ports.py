"""The node ports (docs/design.md, "Ports"): what every node listens on, and so what the operator's
Services, the rigger, the broker and the console reach. Stated here once."""

from __future__ import annotations

API_PORT = 9443  # REST API, HTTPS
CONSOLE_PORT = 8443  # web console, HTTPS
METRICS_PORT = 8070  # Prometheus metrics, HTTPS
SENTINEL_PORT = 8001  # discovery: the Sentinel protocol
# discovery of the TLS databases, over TLS: a sentinel speaks TLS to all the instances it monitors or
# to none (redis/redis#11275), so TLS databases have a sentinel of their own
SENTINEL_TLS_PORT = 8002
# internal, like Redis Enterprise's internal ports (3333-3355); not a database port
CCS_PORT = 3355
