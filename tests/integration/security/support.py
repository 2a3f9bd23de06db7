"""What the security tests share: the cluster they look at and its secret values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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

    def secret_values(self) -> dict[str, str]:
        """Every secret value of the running cluster, by what it is."""
        return {
            "the cluster's admin password": self.cluster.password,
            "the database password": self.db_password,
            "the CCS password": self.ccs_password(),
        }
