"""The database engines a node can run: a table from an engine's version to its binary.

A version names an engine the way a bdb's `redis_version` (and a REDB's `redisVersion`) does:
`major.minor` for Redis ("8.0", "7.0"), `<db_type>-major.minor` for the others ("valkey-8.1").
The table is pure (built from each binary's `--version` banner); `discover` alone runs the binaries.
"""

from __future__ import annotations

import functools
import glob
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recluster.api.engine_versions import FORMAT, normalize_version, version_name

# What databases created before engines were chosen run (the image had only Redis 7.0 then): a stored
# bdb without `redis_version` keeps it.
LEGACY_VERSION = "7.0"
# Where the node looks for engines when none are configured (RECLUSTER_NODE_ENGINES / --engine):
# the configured redis-server first, then these.
DISCOVER_PATTERNS = ("/usr/bin/valkey-server", "/opt/engines/*/bin/*-server")

_BANNER = re.compile(r"^(Redis|Valkey) server v=(\d+)\.(\d+)\.(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Engine:
    db_type: str  # "redis" | "valkey"
    major: int
    minor: int
    patch: int
    server: str  # the server binary's path

    @property
    def version(self) -> str:
        """The name a bdb's `redis_version` uses: "8.0", "valkey-8.1"."""
        return version_name(self.db_type, f"{self.major}.{self.minor}")

    @property
    def full_version(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def rdb_line(self) -> str:
        """The Redis version whose RDB format this engine writes and reads at most (backups): its own,
        and for Valkey 8 Redis 7.2's (format 11; Valkey 8.1 says redis_version 7.2.4 in INFO)."""
        return self.full_version if self.db_type == "redis" else "7.2"

    def public(self) -> dict[str, str]:
        """As `supported_database_versions` lists it."""
        return {"db_type": self.db_type, "version": f"{self.major}.{self.minor}"}


def parse_banner(banner: str, server: str) -> Engine | None:
    """The engine a `<binary> --version` banner names ("Redis server v=8.0.2 ...",
    "Valkey server v=8.1.1 ..."), or None."""
    found = _BANNER.search(banner)
    if found is None:
        return None
    return Engine(found[1].lower(), int(found[2]), int(found[3]), int(found[4]), server)


def engine_of_info(info: Mapping[str, Any]) -> str:
    """The version a running server is, as a bdb's `redis_version` names it, from its `INFO server`:
    `valkey_version` for Valkey (whose `redis_version` says 7.2.4), else `redis_version`; "" unknown."""
    for key, db_type in (("valkey_version", "valkey"), ("redis_version", "redis")):
        found = re.match(r"(\d+)\.(\d+)", str(info.get(key) or ""))
        if found:
            return version_name(db_type, f"{int(found[1])}.{int(found[2])}")
    return ""


class UnknownVersion(ValueError):
    """A version the table does not hold; the message names the versions it does."""


@dataclass(frozen=True)
class EngineTable:
    engines: tuple[Engine, ...]  # newest first, Redis before the others

    @classmethod
    def of(cls, engines: Iterable[Engine]) -> EngineTable:
        """One engine per version (the first listed wins), ordered: Redis newest first, then the others."""
        chosen: dict[str, Engine] = {}
        for engine in engines:
            chosen.setdefault(engine.version, engine)
        order = sorted(chosen.values(), key=lambda e: (e.db_type != "redis", e.db_type, -e.major, -e.minor))
        return cls(tuple(order))

    def versions(self) -> list[str]:
        return [e.version for e in self.engines]

    def default(self) -> Engine | None:
        """What a new database runs when it names no version: the newest Redis (else the newest)."""
        return self.engines[0] if self.engines else None

    def get(self, version: str) -> Engine | None:
        name = normalize_version(version)
        return next((e for e in self.engines if e.version == name), None)

    def resolve(self, requested: str | None) -> Engine:
        """The engine for a requested version (None: the default), or UnknownVersion saying which
        versions there are."""
        if requested is None:
            engine = self.default()
            if engine is None:
                raise UnknownVersion("this node has no database engine")
            return engine
        engine = self.get(requested)
        if engine is None:
            raise UnknownVersion(f"'{requested}' is not a version this cluster runs; supported: "
                                 f"{', '.join(self.versions()) or 'none'} ({FORMAT})")
        return engine

    def supported(self) -> list[dict[str, str]]:
        return [e.public() for e in self.engines]

    def public(self) -> list[dict[str, Any]]:
        return [{**e.public(), "name": e.version, "full_version": e.full_version} for e in self.engines]


def candidate_paths(redis_server: str, configured: Sequence[str]) -> list[str]:
    """The binaries to ask: the configured ones, else the redis-server and what DISCOVER_PATTERNS find."""
    if configured:
        return list(configured)
    found = [redis_server]
    for pattern in DISCOVER_PATTERNS:
        found += sorted(glob.glob(pattern))
    return found


@functools.cache
def _banner(server: str) -> str:
    try:
        return subprocess.run([server, "--version"], capture_output=True, text=True, timeout=10,
                              check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def discover(redis_server: str, configured: tuple[str, ...] = ()) -> EngineTable:
    """The table of the engines on this machine (found and asked once per process)."""
    engines = [parse_banner(_banner(path), path) for path in candidate_paths(redis_server, configured)]
    return EngineTable.of(e for e in engines if e is not None)
