"""The cheap resync of a REDB that nothing moved for.

A full reconcile of a REDB reads the REDB, its REC, the REC's two Secrets and node pods and the
database Secret from Kubernetes, and the database, its shards and its last action from the cluster:
with 100 databases resynced every 30 s that was most of the operator's work at rest. A full pass that
finds the database active, in line with the spec, and writes nothing records what it read (Settled).
The next resync then reads the REDB and the database Secret from Kubernetes and the database and its
shards from the cluster (over the REC's kept connection), and stops there when none of it moved. A
changed REDB, database Secret or REC spec, a database or shard changed through the REST API (drift,
then corrected by the full pass within one resync as before), a cluster that does not answer, or
`full_resync_seconds` since the last full pass: the full pass runs."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any


def fingerprint(bdb: dict[str, Any], shards: list[dict[str, Any]]) -> str:
    """What the cluster says of the database and its shards, in one comparable value."""
    text = json.dumps([bdb, shards], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Settled:
    redb_version: str  # the REDB's resourceVersion
    secret_name: str | None  # the database Secret (None: no default user, no Secret read)
    secret_version: str | None
    rec_name: str
    rec_generation: int | None
    uid: int  # the database's uid in the cluster
    seen: str  # fingerprint() of the database and its shards
    full_pass_after: float  # time.monotonic() after which the full pass runs anyway
    # (name, resourceVersion) of the other Secrets the full pass read and sends from: the backup
    # credentials (a rotated key is sent at once)
    other_secrets: tuple[tuple[str, str | None], ...] = ()

    def unmoved(self, redb: dict[str, Any], rec_generation: int | None) -> bool:
        """The REDB and its REC's spec did not move since the full pass (the database Secret and
        the cluster are asked next)."""
        return (
            time.monotonic() < self.full_pass_after
            and redb["metadata"].get("resourceVersion") == self.redb_version
            and rec_generation == self.rec_generation
        )

    def same_secret(self, secret: dict[str, Any] | None) -> bool:
        return _version(secret) == self.secret_version


def settled(
    redb: dict[str, Any],
    secret_name: str | None,
    secret: dict[str, Any] | None,
    rec_body: dict[str, Any],
    bdb: dict[str, Any],
    shards: list[dict[str, Any]],
    full_resync_seconds: float,
    other_secrets: tuple[dict[str, Any], ...] = (),
) -> Settled:
    return Settled(
        redb_version=str(redb["metadata"].get("resourceVersion")),
        secret_name=secret_name,
        secret_version=_version(secret) if secret_name else None,
        rec_name=rec_body["metadata"]["name"],
        rec_generation=rec_body["metadata"].get("generation"),
        uid=int(bdb["uid"]),
        seen=fingerprint(bdb, shards),
        full_pass_after=time.monotonic() + full_resync_seconds,
        other_secrets=tuple((s["metadata"]["name"], _version(s)) for s in other_secrets),
    )


def _version(obj: dict[str, Any] | None) -> str | None:
    return str(obj["metadata"].get("resourceVersion")) if obj is not None else None


class SettledDatabases:
    """What the last full pass of each settled REDB read, by (namespace, name)."""

    def __init__(self) -> None:
        self._settled: dict[tuple[str, str], Settled] = {}

    def get(self, namespace: str, name: str) -> Settled | None:
        return self._settled.get((namespace, name))

    def record(self, namespace: str, name: str, entry: Settled | None) -> None:
        if entry is None:
            self._settled.pop((namespace, name), None)
        else:
            self._settled[(namespace, name)] = entry
