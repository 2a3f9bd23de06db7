"""What the operator makes once at startup (runner.py) and keeps in kopf's memo: the context every
reconcile takes (settings, the Kubernetes adapter, the clusters' REST clients, what the REDBs' last
full passes saw) and the per-object
loops of both kinds. The handlers only parse what kopf hands over and delegate to these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recluster.clients.kubernetes import Kube
from recluster.operator.connections import ClusterConnections
from recluster.operator.loops import Loops
from recluster.operator.redb.settled import SettledDatabases
from recluster.operator.startup import Settings


@dataclass
class Context:
    """The first argument of both reconcilers: `reconcile_rec(ctx, namespace, name)`,
    `reconcile_redb(ctx, namespace, name)`."""

    settings: Settings
    kube: Kube
    clusters: ClusterConnections = field(default_factory=ClusterConnections)
    databases: SettledDatabases = field(default_factory=SettledDatabases)  # the REDBs' cheap resyncs


@dataclass
class Services:
    """kopf's memo carries this (`memo.services`)."""

    context: Context
    rec: Loops
    redb: Loops

    async def stop(self) -> None:
        await self.rec.stop()
        await self.redb.stop()
        await self.context.clusters.close()


def services(memo: Any) -> Services:
    made: Services = memo.services
    return made
