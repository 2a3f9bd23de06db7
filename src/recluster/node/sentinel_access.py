"""Who may do what on the node's sentinels (the discovery ports 8001 and 8002).

Anyone may run what a Sentinel client needs to find a master and follow it: PING/HELLO/AUTH, `SENTINEL
get-master-addr-by-name`, `masters`, `master`, `replicas`/`slaves`, `sentinels`, `myid`, ROLE and the
event subscriptions. Everything that changes a sentinel (MONITOR, REMOVE, SET, FAILOVER, RESET, CONFIG,
DEBUG, SHUTDOWN, CLIENT KILL, ...) needs the user `recluster`, whose password is derived from the
cluster's CCS password (every member holds it, no one else): the node's own controls and failover
requests log in as it, and the sentinels authenticate to each other as it (`sentinel sentinel-user`).
Before, anyone who reached port 8001 could remove a database's monitor or fail it over.
"""

from __future__ import annotations

import hashlib
import hmac

from redis.credentials import CredentialProvider

ADMIN_USER = "recluster"
# what the default (anonymous) user may run: discovery reads and subscriptions
DISCOVERY_READS = ("get-master-addr-by-name", "masters", "master", "replicas", "slaves", "sentinels", "myid")
DISCOVERY_RULES = " ".join([
    "-@all", "+@connection", "-@dangerous", "+role", "+subscribe", "+psubscribe", "+unsubscribe",
    "+punsubscribe", *(f"+sentinel|{read}" for read in DISCOVERY_READS)])


def admin_password(ccs_password: str) -> str:
    """The sentinels' admin password: derived, for this one purpose, from the cluster's CCS password."""
    return hmac.new(ccs_password.encode(), b"recluster sentinel admin", hashlib.sha256).hexdigest()


def acl_directives(password: str) -> dict[str, str]:
    """sentinel.conf lines, keyed as `sentinel.refresh_directives` replaces them: the anonymous user
    limited to discovery, the admin user (its password stored hashed), and the credentials a
    sentinel presents to its peers (Sentinel needs that one in clear; the file is private)."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return {
        "user default": f"user default on nopass resetchannels &* {DISCOVERY_RULES}",
        f"user {ADMIN_USER}": f"user {ADMIN_USER} on #{digest} ~* &* +@all",
        "sentinel sentinel-user": f"sentinel sentinel-user {ADMIN_USER}",
        "sentinel sentinel-pass": f"sentinel sentinel-pass {password}",
    }


class SentinelAccess(CredentialProvider):
    """The admin credentials, known once the node belongs to a cluster: redis-py asks at every new
    connection, so clients made before the node joined log in as the admin from then on. Before,
    the anonymous user (any password opens it)."""

    def __init__(self, ccs_password: str | None = None) -> None:
        self.password: str | None = None
        if ccs_password:
            self.use(ccs_password)

    def use(self, ccs_password: str | None) -> None:
        self.password = admin_password(ccs_password) if ccs_password else None

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        if self.password is None:
            return ("default", "-")
        return (ADMIN_USER, self.password)

    def directives(self) -> dict[str, str]:
        if self.password is None:
            raise RuntimeError("the sentinel is started before the node knows its cluster's secret")
        return acl_directives(self.password)
