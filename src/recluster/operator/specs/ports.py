"""The node ports (the contract's §3; the node daemon listens on the same)."""

API_PORT = 9443  # REST API, HTTPS
SENTINEL_PORT = 8001  # Sentinel-compatible discovery
METRICS_PORT = 8070  # Prometheus metrics
UI_PORT = 8443  # web console, HTTPS
BROKER_PORT = 8080  # Open Service Broker API
