"""The cluster admin's password follows the node's credentials file (on Kubernetes the REC's Secret,
mounted; the kubelet refreshes it within about a minute of a change). Run by the leader loop: when the
file holds a new password for the admin, it becomes the cluster's and the previous one keeps logging
in for the switch-over (access_operations.ADMIN_SWITCH_OVER_S), so whoever still holds it (the
rigger, the broker, a console session, an operator that has not read the Secret yet) has time to
follow. The operator usually makes the change first through PUT /v1/users/password; this is for when
it could not (it was down while the Secret changed). The file is the source of truth: a password set
only through the REST API gives way to the file's on its next change or on a new leader."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path

from recluster.node.access_operations import ADMIN_SWITCH_OVER_S
from recluster.node.auth import hash_password, verify_password
from recluster.node.ccs import CcsStore
from recluster.node.config import read_credentials_file
from recluster.node.records import ClusterState

log = logging.getLogger(__name__)


def _fingerprint(path: Path) -> str | None:
    try:
        files = [path / "username", path / "password"] if path.is_dir() else [path]
        return hashlib.sha256(b"\0".join(f.read_bytes() for f in files)).hexdigest()
    except OSError:
        return None


class AdminCredentialsWatch:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: str | None = None  # the file's fingerprint when last acted on

    async def follow(self, store: CcsStore, state: ClusterState) -> None:
        """Apply a new admin password from the file (a no-op while the file is unchanged)."""
        if self.path is None:
            return
        seen = _fingerprint(self.path)
        if seen is None or seen == self._seen:
            return
        try:
            username, password = read_credentials_file(self.path)
        except (OSError, ValueError, KeyError):
            return  # being replaced by the kubelet: next pass
        current = state.cluster.password_hash
        if username != state.cluster.username:
            log.warning("the credentials file names user '%s', the cluster's admin is '%s': a username "
                        "cannot be changed; the file is not applied", username, state.cluster.username)
        elif password and not await asyncio.to_thread(verify_password, password, current):
            new_hash = await asyncio.to_thread(hash_password, password)

            def change(st: ClusterState) -> None:
                if st.cluster.password_hash == current:  # nobody changed it meanwhile
                    st.cluster.previous_password_hash = current
                    st.cluster.previous_password_until = time.time() + ADMIN_SWITCH_OVER_S
                    st.cluster.password_hash = new_hash

            await store.write(change, "apply the admin password of the credentials file")
            log.info("leader: the admin password is now the credentials file's (the previous one logs in "
                     "for %.0f s more)", ADMIN_SWITCH_OVER_S)
        self._seen = seen
