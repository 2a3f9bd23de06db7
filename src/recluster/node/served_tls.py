"""The TLS of the node daemon's own HTTPS servers: the REST API (9443, Redis Enterprise's certificate
name `api`), the console (8443, `cm`) and the metrics endpoint (8070, `metrics_exporter`). Each serves
the node's own certificate (node/tls.py) until a user gives one (PUT /v1/cluster/update_cert, kept in
the cluster state), and the node's own again when it is removed.

A listener is given a `ReloadableContext`: asyncio asks the context it was given for every new
connection (`wrap_bio`), and this one hands that to the context it currently holds. A new certificate
is loaded into a new `ssl.SSLContext` and swapped in: new connections get it, connections already
open keep theirs, the daemon does not restart and no listener closes."""

from __future__ import annotations

import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any

from recluster.certificates import UserCertificate
from recluster.node.processes import write_private

log = logging.getLogger(__name__)

API, CONSOLE, METRICS = "api", "cm", "metrics_exporter"
SERVER_CERTIFICATES = (API, CONSOLE, METRICS)  # the names update_cert takes for these servers


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context serving `cert` (the leaf then its chain) with `key`, TLS 1.2 at least."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


class ReloadableContext(ssl.SSLContext):
    """What a listener is given: every connection is wrapped by the context it holds at that moment
    (`use` swaps it). Only `wrap_bio` (asyncio's path) is delegated; nothing else reads it."""

    _current: ssl.SSLContext

    def __new__(cls, initial: ssl.SSLContext) -> ReloadableContext:
        self = super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)
        self._current = initial
        return self

    def __init__(self, initial: ssl.SSLContext) -> None:
        pass

    def use(self, context: ssl.SSLContext) -> None:
        self._current = context

    def wrap_bio(self, incoming: Any, outgoing: Any, server_side: bool = False,
                 server_hostname: Any = None, session: Any = None) -> ssl.SSLObject:
        return self._current.wrap_bio(incoming, outgoing, server_side=server_side,
                                      server_hostname=server_hostname, session=session)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        return self._current.wrap_socket(*args, **kwargs)


def user_context(certificate: UserCertificate, scratch: Path) -> ssl.SSLContext:
    """A server context of a user's (checked) certificate. OpenSSL loads a chain and key only from
    files: they are written to private files in `scratch` and removed once loaded."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        write_private(cert, certificate.chain)
        write_private(key, certificate.key)
        return server_context(cert, key)


class ServedTls:
    """The contexts of this node's HTTPS servers, following the cluster state's user certificates."""

    def __init__(self, own_cert: Path, own_key: Path, scratch: Path) -> None:
        self.own_cert, self.own_key, self.scratch = own_cert, own_key, scratch
        own = server_context(own_cert, own_key)
        self.contexts = {name: ReloadableContext(own) for name in SERVER_CERTIFICATES}
        # what each serves: the user's certificate chain, "" for the node's own
        self.serving = dict.fromkeys(SERVER_CERTIFICATES, "")

    def context(self, name: str) -> ReloadableContext:
        return self.contexts[name]

    def follow(self, wanted: dict[str, UserCertificate]) -> list[str]:
        """Serve what the cluster state holds (`ClusterRecord.served_certificates`); the names
        changed. A certificate that cannot be loaded (it was checked before it was stored, so only a
        disk or OpenSSL failure) is logged by name and the server keeps what it served."""
        changed = []
        for name in SERVER_CERTIFICATES:
            certificate = wanted.get(name)
            chain = certificate.chain if certificate else ""
            if chain == self.serving[name]:
                continue
            try:
                context = user_context(certificate, self.scratch) if certificate \
                    else server_context(self.own_cert, self.own_key)
            except (OSError, ssl.SSLError) as exc:
                log.warning("certificate %r not loaded, the server keeps what it served: %s", name,
                            type(exc).__name__)
                continue
            self.contexts[name].use(context)
            self.serving[name] = chain
            changed.append(name)
            log.info("certificate %r: new connections get %s", name,
                     "the user's certificate" if certificate else "this node's own certificate")
        return changed
