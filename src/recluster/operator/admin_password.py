"""The cluster admin's password follows the REC's credentials Secret: when the Secret's password
changes, the first of the controllers to read it changes the cluster's through PUT
/v1/users/password, proving the old one with the REST clients still made with it, before new clients
with the new one replace them (operator/connections.py). The cluster keeps the old password valid for
a 10-minute switch-over, so the rigger and the broker (which read the mounted Secret for every call)
and console sessions follow without a failed call. When the operator was down during the change,
the nodes apply the mounted Secret themselves (recluster.node.admin_credentials) within about a
minute."""

from __future__ import annotations

import logging

import httpx

from recluster.clients.cluster_api import ClusterApiError
from recluster.operator.rec.cluster import ClusterClient

log = logging.getLogger(__name__)


async def change_admin_password(current: ClusterClient, new_password: str) -> bool:
    """Whether the cluster now has `new_password` (changed here, or already before)."""
    old = current.credentials
    if old is None:
        return False
    change = {"username": old.username, "old_password": old.password, "new_password": new_password}
    for pod in [p for p in current.pods if p.ip and p.ready and not p.deleting]:
        try:
            async with current.api(pod) as api:
                await api.request("PUT", "/v1/users/password", change)
        except ClusterApiError as exc:
            if exc.status == 401:  # the cluster no longer takes the old one as current: changed already
                return True
            log.warning("changing the admin password of %s/%s through %s: %s", current.rec.namespace,
                        current.rec.name, pod.name, exc)
            continue
        except (httpx.HTTPError, OSError) as exc:
            log.info("changing the admin password through %s: %s", pod.name, type(exc).__name__)
            continue
        log.info("cluster %s/%s: the admin password is now the Secret's (the previous one logs in for 10 "
                 "more minutes)", current.rec.namespace, current.rec.name)
        return True
    return False
