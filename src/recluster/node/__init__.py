"""The node daemon: REST API, configuration store, shards, Sentinel control, placement, metrics."""
