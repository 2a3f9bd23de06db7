"""What a node remembers in its data directory: its uid, its cluster and how to reach its peers.
A node restarted with the same directory rejoins with this, without help."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recluster.api.ports import SENTINEL_TLS_PORT
from recluster.node.processes import write_private


@dataclass
class Peer:
    name: str
    ccs_port: int
    sentinel_port: int
    api_port: int
    addr: str = ""  # the peer's last known address (Redis and Sentinel traffic goes there, not via DNS)
    sentinel_tls_port: int = SENTINEL_TLS_PORT

    def sentinel(self, tls: bool) -> int:
        return self.sentinel_tls_port if tls else self.sentinel_port

    @property
    def host(self) -> str:
        return self.addr or self.name


@dataclass
class Membership:
    node_uid: int
    cluster_name: str
    ccs_password: str
    peers: list[Peer] = field(default_factory=list)

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / "membership.json"

    def save(self, data_dir: Path) -> None:
        write_private(self.path(data_dir), json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, data_dir: Path) -> Membership | None:
        try:
            raw = json.loads(cls.path(data_dir).read_text())
        except (OSError, ValueError):
            return None
        peers = [Peer(**p) for p in raw.pop("peers", [])]
        return cls(peers=peers, **raw)

    @classmethod
    def forget(cls, data_dir: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            cls.path(data_dir).unlink()
