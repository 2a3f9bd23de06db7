"""Where the apiserver is and how to prove who we are: the pod's service account (in a pod), else a
kubeconfig file (KUBECONFIG or the given path, its current context): server, CA, client certificate
or bearer token. What the Kubernetes adapter (kubernetes.py) and kopf's login both use, so that the
operator does not load kubernetes_asyncio's generated client (some 60 MiB of models) to read it.

Supported: the in-cluster service account (its token file is read again every minute: bound tokens
rotate), and kubeconfig clusters with `server`, `certificate-authority(-data)`,
`insecure-skip-tls-verify`, users with `client-certificate(-data)`/`client-key(-data)` or `token`/
`tokenFile`. Exec and auth-provider plugins are not (the project's clusters never use them)."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_RECHECK_S = 60.0


class KubeConfigError(Exception):
    """No usable credentials: not in a pod, and no readable kubeconfig."""


@dataclass
class KubeConfig:
    server: str
    ca_file: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    _token_read_at: float = field(default=0.0, repr=False)

    def __repr__(self) -> str:  # never print a token
        return f"KubeConfig(server={self.server!r})"

    @classmethod
    def load(cls, kubeconfig: str | None = None) -> KubeConfig:
        """In a pod: its service account; otherwise the kubeconfig (the given file, KUBECONFIG, or
        ~/.kube/config)."""
        found = cls.in_cluster()
        if found is not None:
            return found
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        return cls.from_file(Path(path).expanduser())

    @classmethod
    def in_cluster(cls) -> KubeConfig | None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        token = SERVICE_ACCOUNT / "token"
        if not host or not port or not token.exists():
            return None
        host = f"[{host}]" if ":" in host else host
        ca = SERVICE_ACCOUNT / "ca.crt"
        return cls(f"https://{host}:{port}", ca_file=str(ca) if ca.exists() else None, token_file=str(token))

    @classmethod
    def from_file(cls, path: Path) -> KubeConfig:
        try:
            config: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise KubeConfigError(f"no service account and no kubeconfig ({exc})") from None
        base = path.parent
        contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
        clusters = {c["name"]: c.get("cluster") or {} for c in config.get("clusters") or []}
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        context = contexts.get(config.get("current-context") or "")
        if context is None:
            raise KubeConfigError(f"{path}: no current context")
        cluster, user = clusters.get(context.get("cluster"), {}), users.get(context.get("user"), {})
        if not cluster.get("server"):
            raise KubeConfigError(f"{path}: the current context's cluster has no server")
        return cls(
            str(cluster["server"]).rstrip("/"),
            ca_file=_file(base, cluster, "certificate-authority"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            cert_file=_file(base, user, "client-certificate"),
            key_file=_file(base, user, "client-key"),
            token=user.get("token"),
            token_file=_path(base, user.get("tokenFile")),
        )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def bearer(self, refresh: bool = False) -> str | None:
        """The token to send (re-read from its file at most every minute, or now with `refresh`)."""
        stale = refresh or self.token is None or time.monotonic() - self._token_read_at > TOKEN_RECHECK_S
        if self.token_file and stale:
            self.token = Path(self.token_file).read_text().strip() or None
            self._token_read_at = time.monotonic()
        return self.token


def _path(base: Path, value: Any) -> str | None:
    return str(base / Path(str(value)).expanduser()) if value else None


def _file(base: Path, entry: dict[str, Any], key: str) -> str | None:
    """A kubeconfig file entry (`key`, relative to the kubeconfig) or its inline `key-data` written
    to a private file (the ssl module loads certificates and keys from files)."""
    if entry.get(key):
        return _path(base, entry[key])
    data = entry.get(f"{key}-data")
    if not data:
        return None
    handle, name = tempfile.mkstemp(prefix="recluster-kube-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:  # mkstemp: 0600
        out.write(base64.b64decode(data))
    return name
