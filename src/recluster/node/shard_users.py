"""The ACL users a shard runs with: the database's users (recluster.node.access decides who) and the
cluster's own logins, each with only the commands its job needs. Pure.

- `recluster-replication`, a replica's login to its master (`masteruser`): PSYNC, REPLCONF and PING, as
  Redis's ACL guide gives replicas.
- `recluster-sentinel`, Sentinel's login (`auth-user`): what it sends to monitor, announce itself and
  fail over (Redis's ACL guide for Sentinel; the reconfiguration runs in MULTI/EXEC, so a command
  missing here aborts the whole failover, not one step).
- `recluster-import`, an import's writer: FLUSHALL and RESTORE on every key, nothing that reads.
- `recluster-internal`, the node's own probes and settings: INFO and PING, CONFIG GET/SET, the ACL user
  management that applies the database's users, and REPLICAOF to re-point a replica. No key and no
  channel.

They share the database's internal password (BdbRecord.internal_password), which only the cluster knows;
a client with the database's password cannot log in as them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from recluster.node.records import INTERNAL_LOGINS, BdbRecord, InternalJob

# What each job may run, after `reset` (no command, key or channel; `resetchannels` for Redis 6.2,
# whose `reset` keeps every channel and refuses a pattern after that)
JOB_PERMISSIONS: dict[InternalJob, tuple[str, ...]] = {
    "replication": ("+psync", "+replconf", "+ping"),
    "sentinel": ("resetchannels", "&__sentinel__:hello", "+multi", "+exec", "+slaveof", "+ping", "+info",
                 "+role", "+publish", "+subscribe", "+config|rewrite", "+client|setname", "+client|kill",
                 "+script|kill"),
    "control": ("+ping", "+info", "+config|get", "+config|set", "+acl|setuser", "+acl|deluser",
                "+acl|users", "+replicaof"),
    "import": ("~*", "+ping", "+flushall", "+restore"),
}


@dataclass(frozen=True)
class AclUser:
    """An ACL user of a shard as the node applies it: name, the SHA-256 of its password, its
    permission arguments."""

    name: str
    password_sha256: str
    permissions: tuple[str, ...]

    def setuser_args(self) -> list[str]:
        # `reset` first: the user is exactly this, whatever an older rule or password gave it
        return ["reset", "on", f"#{self.password_sha256}", *self.permissions]


def internal_users(bdb: BdbRecord) -> tuple[AclUser, ...]:
    """The cluster's own users on `bdb`'s shards (none on a database made before them)."""
    if not bdb.internal_password:
        return ()
    digest = hashlib.sha256(bdb.internal_password.encode()).hexdigest()
    return tuple(AclUser(INTERNAL_LOGINS[job], digest, permissions)
                 for job, permissions in JOB_PERMISSIONS.items())
