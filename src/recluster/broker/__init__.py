"""Open Service Broker API v2.17 over the cluster's REST API (`recluster broker`)."""
