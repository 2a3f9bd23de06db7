"""recluster: Redis Enterprise-style clusters on Kubernetes."""

__version__ = "0.1.0"
