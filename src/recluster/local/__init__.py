"""The local Kubernetes cluster: a real control plane, nodes and add-ons built from Go modules."""
