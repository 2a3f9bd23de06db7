"""Where the apiserver is and how to prove who we are: the pod's service account (in a pod), else a
kubeconfig file (KUBECONFIG or the given path, its current context): server, CA, client certificate
or bearer token. What the Kubernetes adapter (kubernetes.py) and kopf's login both use, so that the
operator does not load kubernetes_asyncio's generated client (some 60 MiB of models) to read it.

Supported: the in-cluster service account (its token file is read again every minute: bound tokens
rotate), and kubeconfig clusters with `server`, `certificate-authority(-data)`,
`insecure-skip-tls-verify`, users with `client-certificate(-data)`/`client-key(-data)` or `token`/
`tokenFile`. Exec and auth-provider plugins are not (the project's clusters never use them).

The admin CLI (`kubectl recluster`) reads it as kubectl does (`for_user`): `--kubeconfig`, else every
file of KUBECONFIG merged (the first to set a name or the current context wins), else
~/.kube/config; `--context` instead of the current one; the context's namespace is kept."""

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
    namespace: str | None = None  # the context's namespace (None: none set)
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
        namespace_file = SERVICE_ACCOUNT / "namespace"
        namespace = namespace_file.read_text().strip() if namespace_file.exists() else None
        return cls(f"https://{host}:{port}", ca_file=str(ca) if ca.exists() else None, token_file=str(token),
                   namespace=namespace or None)

    @classmethod
    def from_file(cls, path: Path, context: str | None = None) -> KubeConfig:
        return cls.from_files([path], context)

    @classmethod
    def for_user(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeConfig:
        """As kubectl finds it: the given file, else the files of KUBECONFIG (merged), else
        ~/.kube/config; in a pod without any of those, its service account (a `context` then is an
        error: there is none to choose)."""
        if kubeconfig:
            return cls.from_files([Path(kubeconfig).expanduser()], context)
        listed = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        if listed:
            present = [p for p in listed if p.exists()]
            if not present:
                raise KubeConfigError(f"KUBECONFIG names no readable file ({', '.join(map(str, listed))})")
            return cls.from_files(present, context)
        default = Path("~/.kube/config").expanduser()
        found = None if default.exists() or context else cls.in_cluster()
        return found if found is not None else cls.from_files([default], context)

    @classmethod
    def from_files(cls, paths: list[Path], context_name: str | None = None) -> KubeConfig:
        """The files merged as kubectl merges KUBECONFIG: the first file to name a context, cluster
        or user (or to set the current context) wins; relative paths are relative to their file."""
        contexts: dict[str, dict[str, Any]] = {}
        clusters: dict[str, tuple[Path, dict[str, Any]]] = {}
        users: dict[str, tuple[Path, dict[str, Any]]] = {}
        current = ""
        for path in paths:
            try:
                config: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
            except OSError as exc:
                raise KubeConfigError(f"no service account and no kubeconfig ({exc})") from None
            for c in config.get("contexts") or []:
                contexts.setdefault(c["name"], c.get("context") or {})
            for c in config.get("clusters") or []:
                clusters.setdefault(c["name"], (path.parent, c.get("cluster") or {}))
            for u in config.get("users") or []:
                users.setdefault(u["name"], (path.parent, u.get("user") or {}))
            current = current or config.get("current-context") or ""
        where = ", ".join(map(str, paths))
        name = context_name or current
        context = contexts.get(name)
        if context is None:
            if context_name:
                known = ", ".join(sorted(contexts)) or "none"
                raise KubeConfigError(
                    f"--context {context_name}: no such context in {where} (known: {known})")
            raise KubeConfigError(f"{where}: no current context")
        cluster_base, cluster = clusters.get(context.get("cluster") or "", (paths[0].parent, {}))
        user_base, user = users.get(context.get("user") or "", (paths[0].parent, {}))
        if not cluster.get("server"):
            raise KubeConfigError(f"{where}: the cluster of context {name!r} has no server")
        return cls(
            str(cluster["server"]).rstrip("/"),
            ca_file=_file(cluster_base, cluster, "certificate-authority"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            cert_file=_file(user_base, user, "client-certificate"),
            key_file=_file(user_base, user, "client-key"),
            token=user.get("token"),
            token_file=_path(user_base, user.get("tokenFile")),
            namespace=context.get("namespace") or None,
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
