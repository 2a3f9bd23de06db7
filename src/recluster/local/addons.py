"""The local cluster's host-side add-on controllers in one recorded process: the local volume
provisioner, the LoadBalancer address controller and the keeper of the host's route to Services.

    python -m recluster.local.addons --state-dir DIR
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from recluster.local.loadbalancer import LoadBalancerController
from recluster.local.provisioner import Provisioner
from recluster.local.serviceroute import ServiceRoute

ROUTE_INTERVAL = 0.5  # the host's Services move off a failed node within about a second

log = logging.getLogger("recluster.addons")


def main() -> None:
    from recluster.local.cluster import LocalCluster

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cluster = LocalCluster.load(args.state_dir)
    if cluster is None:
        raise SystemExit(f"no local cluster in {args.state_dir}")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=keep_service_route, args=(args.state_dir, lambda: stopping), daemon=True).start()
    with cluster.api() as api:
        provisioner = Provisioner(api, cluster.layout, args.state_dir)
        balancer = LoadBalancerController(api, cluster.layout.lb_pool)
        ready = False
        while not stopping:
            try:
                if not ready:
                    provisioner.ensure_storage_class()
                    ready = True
                provisioner.sync_once()
                balancer.sync_once()
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                log.warning("sync failed, retrying: %s", exc)
            time.sleep(args.interval)


def keep_service_route(state_dir: Path, stopping: Callable[[], bool]) -> None:
    """Its own thread: a slow apiserver call of the other controllers must not hold it up."""
    from recluster.local.cluster import LocalCluster

    route: ServiceRoute | None = None
    candidates: list[str] = []
    reloaded = 0.0
    while not stopping():
        try:
            if time.monotonic() - reloaded > 10:  # `local up --nodes N` may add or remove nodes
                cluster = LocalCluster.load(state_dir)
                if cluster is not None:
                    route, candidates = ServiceRoute(cluster.layout), [n.address for n in cluster.nodes]
                reloaded = time.monotonic()
            if route is not None:
                route.sync_once(candidates)
        except Exception as exc:  # keep the thread alive: the next pass retries
            log.warning("service route check failed, retrying: %s", exc)
        time.sleep(ROUTE_INTERVAL)


if __name__ == "__main__":
    main()
