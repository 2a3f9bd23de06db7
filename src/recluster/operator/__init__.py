"""The operator: kopf handlers and reconcilers, built on the pure builders in `recluster.operator.specs`."""
