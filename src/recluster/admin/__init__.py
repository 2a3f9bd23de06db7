"""The admin CLI, `kubectl recluster` (docs/admin-cli.md): status, failover, connect, logs and report
of a running cluster, from the user's kubeconfig and the REC's Secrets, through the project's
Kubernetes adapter and the operator's REST client. One module per command; `cli.py` wires them."""
