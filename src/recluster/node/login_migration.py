"""How a database made before the cluster's per-job logins (recluster.node.shard_users) moves to them
while it runs. Pure: the leader loop asks these and writes what they return.

Two steps, so that no sentinel or replica ever logs in as a user its master does not have yet (a
sentinel refused there sees the master down and, with its peers, would fail it over):
1. the database gets an internal password with `internal_logins` off: every node adds the job users
   to its shards (an addition: nothing logs in as them yet), in the config file and live;
2. once the leader has seen the users on every shard of the database, `internal_logins` goes on and
   the nodes move the replicas' `masteruser`, the sentinels' `auth-user` and their own probes to them.

Only databases whose default user is on move: one whose default user is off already has a user named
`recluster-internal` (every command, the database password) that its connections use, which step 1
would change under them.
"""

from __future__ import annotations

from recluster.node.records import INTERNAL_LOGINS, BdbRecord, ClusterState

JOB_USERS = frozenset(INTERNAL_LOGINS.values())


def needing_job_users(state: ClusterState) -> list[int]:
    """Active databases with the default user on and no internal password (made by an older version)."""
    return [bdb.uid for bdb in state.bdbs.values()
            if bdb.status == "active" and bdb.default_user and not bdb.internal_password]


def give_job_users(state: ClusterState, passwords: dict[int, str]) -> list[str]:
    """Step 1 for the databases of `passwords` (uid -> a new internal password) that still need it."""
    changes = []
    for uid, password in passwords.items():
        bdb = state.bdbs.get(uid)
        if bdb is not None and not bdb.internal_password and bdb.default_user:
            bdb.internal_password, bdb.internal_logins = password, False
            changes.append(f"database {bdb.name}: the cluster's per-job users are added to its shards")
    return changes


def waiting_to_switch(state: ClusterState) -> list[BdbRecord]:
    """Databases whose shards are getting the job users (step 1 done, step 2 not yet)."""
    return [bdb for bdb in state.bdbs.values() if bdb.internal_password and not bdb.internal_logins]


def has_job_users(acl_users: list[str]) -> bool:
    """What a shard's `ACL USERS` must list before the database's logins move."""
    return set(acl_users) >= JOB_USERS


def switch_logins(state: ClusterState, uid: int) -> list[str]:
    """Step 2 for database `uid`."""
    bdb = state.bdbs.get(uid)
    if bdb is None or not bdb.internal_password or bdb.internal_logins:
        return []
    bdb.internal_logins = True
    return [f"database {bdb.name}: the cluster's connections now log in as its per-job users"]
