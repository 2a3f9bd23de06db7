"""Prometheus metrics of the operator: reconciles, errors and durations per kind, and the state of
each REC. Served with /healthz on one small HTTP server (see http.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

RECONCILES = Counter("recluster_operator_reconciles", "Reconciles run, by kind.", ["kind"], registry=REGISTRY)
RECONCILE_ERRORS = Counter(
    "recluster_operator_reconcile_errors", "Reconciles that failed, by kind.", ["kind"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "recluster_operator_reconcile_duration_seconds",
    "Time a reconcile took, by kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
APPLIES = Counter(
    "recluster_operator_applies",
    "Server-side applies of child objects, by kind.",
    ["kind"],
    registry=REGISTRY,
)
LEADER = Gauge("recluster_operator_leader", "1 while this replica holds the Lease.", registry=REGISTRY)
REC_READY_NODES = Gauge(
    "recluster_operator_rec_ready_nodes",
    "Ready cluster nodes per REC.",
    ["namespace", "name"],
    registry=REGISTRY,
)

# the samples a family of each type exposes besides (or instead of) its name
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exposed_names() -> set[str]:
    """Every sample name /metrics may expose (what dashboards and rules may query), also of the
    labelled families that have no sample yet. prometheus_client's `_created` samples are left out:
    nothing should query them."""
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }
