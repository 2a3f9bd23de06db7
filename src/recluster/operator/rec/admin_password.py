"""The cluster admin's password follows the REC's credentials Secret: when the Secret's password
changes, the operator changes the cluster's at once through PUT /v1/users/password, proving the old
one it still holds (the REST clients made with it), before it makes clients with the new one. The
cluster keeps the old password valid for a 10-minute switch-over, so the rigger (which reads the
mounted Secret on every pass), the broker and console sessions follow without a failed call. When
the operator was down during the change, the nodes apply the mounted Secret themselves
(recluster.node.admin_credentials) within about a minute."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from recluster.clients.cluster_api import ClusterApiError
from recluster.clients.kubernetes import Kube
from recluster.operator.rec.cluster import ClusterClient, Credentials
from recluster.operator.status import post_event

log = logging.getLogger(__name__)


async def follow_admin_password(
    kube: Kube, body: dict[str, Any], previous: ClusterClient | None, wanted: Credentials | None
) -> None:
    old = previous.credentials if previous is not None else None
    if previous is None or old is None or wanted is None or old.username != wanted.username \
            or old.password == wanted.password:
        return
    change = {"username": old.username, "old_password": old.password, "new_password": wanted.password}
    for pod in [p for p in previous.pods if p.ip and p.ready and not p.deleting]:
        try:
            async with previous.api(pod) as api:
                await api.request("PUT", "/v1/users/password", change)
        except ClusterApiError as exc:
            if exc.status == 401:  # the cluster no longer takes the old one: changed already
                return
            log.warning("changing the admin password through %s: %s", pod.name, exc)
            continue
        except (httpx.HTTPError, OSError) as exc:
            log.info("changing the admin password through %s: %s", pod.name, type(exc).__name__)
            continue
        await post_event(kube, body, "Normal", "AdminPassword", "the cluster's admin password is now the "
                         "Secret's; the previous one logs in for 10 more minutes")
        return
