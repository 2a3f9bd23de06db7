"""What the security tests share: the cluster they look at and its secret values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from recluster.node.ccs import STATE_KEY
from recluster.node.devcluster import LoopbackCluster

DB_NAME = "secret-db"


@dataclass
class SecuredCluster:
    """A running loopback cluster and the password of its replicated database `DB_NAME`."""

    cluster: LoopbackCluster
    db_password: str
    bdb: dict[str, Any] = field(default_factory=dict)

    def ccs_password(self) -> str:
        """The CCS password the cluster generated (every member keeps it in membership.json)."""
        raw = json.loads((self.cluster.nodes[0].data_dir / "membership.json").read_text())
        return str(raw["ccs_password"])

    def internal_password(self) -> str:
        """The database's internal password (the cluster's own logins to its shards), from the
        cluster state in the first node's CCS."""
        node = self.cluster.nodes[0]
        with redis.Redis(host=node.addr, port=self.cluster.ccs_port, password=self.ccs_password(),
                         socket_timeout=2) as ccs:
            state = json.loads(ccs.get(STATE_KEY) or b"{}")
        return str(state["bdbs"][str(self.bdb["uid"])]["internal_password"])

    def secret_values(self) -> dict[str, str]:
        """Every secret value of the running cluster, by what it is."""
        return {
            "the cluster's admin password": self.cluster.password,
            "the database password": self.db_password,
            "the database's internal password": self.internal_password(),
            "the CCS password": self.ccs_password(),
        }
