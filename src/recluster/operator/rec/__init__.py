"""Reconcilers of a RedisEnterpriseCluster, by concern: the whole loop (reconcile), the cluster's
life through its REST API (cluster), status and events (status), deletion (delete)."""
