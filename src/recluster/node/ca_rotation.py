"""Rotation of the cluster's own database CA, in three steps so that no client is cut off:

1. POST /v1/cluster/certificates/rotate makes the next CA. It is trusted at once: the nodes add it
   to every trust list, and `proxy_cert` (hence the REDB secrets' `ca.crt` and the ConfigMap
   `<rec>-database-ca`) carries it beside the current one. The current CA still signs.
2. At `database_ca_next_at` (`overlap_seconds` later, a day by default: time for clients to read
   `ca.crt` again) the leader makes the next CA the CA (`promote`); every node reissues its shards'
   and its own certificates from it, loaded by the running shards without a restart. The replaced
   CA stays trusted (`previous`) while the leaves it signed are replaced.
3. RETIRE_AFTER_S later the leader drops it (`retire`): `proxy_cert` is the new CA alone.

The decisions are pure (`next_step`, `apply_step`); the leader loop applies them, the REST call
is node/proxy_certificate.py's. A user's certificate
(`certificates.proxyCertificateSecretName`) is not touched: it is rotated by changing its Secret."""

from __future__ import annotations

from typing import Literal

from recluster.node.records import ClusterRecord

DEFAULT_OVERLAP_S = 86400
RETIRE_AFTER_S = 3600  # the replaced CA stays trusted this long after the switch (leaves reissued)

Step = Literal["promote", "retire"]


def next_step(cluster: ClusterRecord, now: float) -> Step | None:
    """What the leader does now about a rotation (pure): make the next CA the CA once its time has
    come, drop the replaced CA once its time is up."""
    if cluster.database_ca_next_cert and now >= cluster.database_ca_next_at:
        return "promote"
    if cluster.database_ca_previous_cert and now >= cluster.database_ca_previous_until:
        return "retire"
    return None


def apply_step(cluster: ClusterRecord, step: Step, now: float) -> str:
    """Apply `step` to the cluster record; a line for the log."""
    if step == "promote":
        cluster.database_ca_previous_cert = cluster.database_ca_cert
        cluster.database_ca_previous_until = now + RETIRE_AFTER_S
        cluster.database_ca_cert = cluster.database_ca_next_cert
        cluster.database_ca_key = cluster.database_ca_next_key
        cluster.database_ca_next_cert = cluster.database_ca_next_key = ""
        cluster.database_ca_next_at = 0.0
        return "the next database CA signs the databases' certificates now; the replaced one stays trusted " \
               f"for {RETIRE_AFTER_S} s"
    cluster.database_ca_previous_cert, cluster.database_ca_previous_until = "", 0.0
    return "the replaced database CA is no longer trusted"
