"""The local cluster's host-side add-on controllers in one recorded process: the local volume
provisioner and the LoadBalancer address controller.

    python -m recluster.local.addons --state-dir DIR
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path

import httpx

from recluster.local.loadbalancer import LoadBalancerController
from recluster.local.provisioner import Provisioner

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


if __name__ == "__main__":
    main()
