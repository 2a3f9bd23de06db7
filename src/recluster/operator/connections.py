"""One REST client per REC's cluster, shared by both controllers and kept across reconciles.

A REST call used to make a new HTTP client, TLS context and connection (and a handshake) each time;
with 100 databases resynced every 30 s that was most of the operator's CPU at rest. Now each REC has
one ClusterClient (one client per node pod, keep-alive connections) for as long as the REC's
identity, CA and credentials stay: the reconcilers read those on every full pass (the REC's Secrets)
and ask for the client with what they read, so a rotated CA or password gives new clients at once.
Clients replaced or of pods gone are closed a little later, once the calls in flight are over."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from recluster.api.rec import RedisEnterpriseCluster
from recluster.clients.cluster_api import ClusterApi
from recluster.operator.admin_password import change_admin_password
from recluster.operator.rec.cluster import ClusterClient, Credentials, NodePod

log = logging.getLogger(__name__)

CLOSE_AFTER_S = 30.0  # longer than any REST call (10 s timeout) in flight on a client replaced


class ClusterConnections:
    def __init__(self) -> None:
        self._clusters: dict[tuple[str, str], ClusterClient] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def client(
        self, rec: RedisEnterpriseCluster, ca_pem: str, credentials: Credentials | None, cluster_domain: str
    ) -> ClusterClient:
        """The REC's client for this CA and these credentials: the one kept, or a new one."""
        key = (rec.namespace, rec.name)
        wanted = ClusterClient(rec, ca_pem, credentials, cluster_domain)
        current = self._clusters.get(key)
        if current is not None and current.identity == wanted.identity:
            current.rec = rec  # the spec may have changed; names and identity did not
            return current
        if current is not None:
            log.info("REST clients of cluster %s/%s made anew (CA or credentials changed)", *key)
            self._close_later(current.clients())
        self._clusters[key] = wanted
        return wanted

    async def connect(
        self, rec: RedisEnterpriseCluster, ca_pem: str, credentials: Credentials | None, cluster_domain: str
    ) -> ClusterClient:
        """`client`, after carrying a new admin password of the Secret to the cluster with the clients
        still made with the old one (operator/admin_password.py): both controllers come here, and
        whichever reads the changed Secret first makes the change before anything calls with it."""
        current = self._clusters.get((rec.namespace, rec.name))
        old = current.credentials if current is not None else None
        if (current is not None and old is not None and credentials is not None and current.ca_pem == ca_pem
                and old.username == credentials.username and old.password != credentials.password):
            await change_admin_password(current, credentials.password)
        return self.client(rec, ca_pem, credentials, cluster_domain)

    def cached(self, namespace: str, name: str) -> ClusterClient | None:
        """The REC's client as last made, with the node pods last listed (None: none yet)."""
        return self._clusters.get((namespace, name))

    def pods_listed(self, client: ClusterClient, pods: list[NodePod]) -> None:
        """Record the REC's node pods as just listed; the clients of pods gone are closed."""
        self._close_later(client.remember_pods(pods))

    def forget(self, namespace: str, name: str) -> None:
        """The REC is gone: close its clients."""
        client = self._clusters.pop((namespace, name), None)
        if client is not None:
            self._close_later(client.clients())

    async def close(self) -> None:
        for client in self._clusters.values():
            for api in client.clients():
                await _close(api)
        self._clusters.clear()
        for task in list(self._closing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _close_later(self, apis: list[ClusterApi]) -> None:
        if not apis:
            return

        async def close_all() -> None:
            try:
                await asyncio.sleep(CLOSE_AFTER_S)
            finally:
                for api in apis:
                    await _close(api)

        task = asyncio.create_task(close_all())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close(api: ClusterApi) -> None:
    with contextlib.suppress(Exception):
        await api.aclose()
