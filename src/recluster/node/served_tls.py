"""The TLS of the node daemon's own HTTPS servers: the REST API (9443, Redis Enterprise's certificate
name `api`), the console (8443, `cm`) and the metrics endpoint (8070, `metrics_exporter`). Each serves
the node's own certificate (node/tls.py) until a user gives one (PUT /v1/cluster/update_cert, kept in
the cluster state), and the node's own again when it is removed.

The cluster's own clients keep the node's certificate, whatever a user gives: a client that names
(TLS SNI) one of the names the node's own certificate carries gets the node's own (the operator, the
rigger and the nodes themselves address a node by its pod's DNS name, the admin CLI and the broker by
the REC's Service names, all checked against the REC's CA). Every other client (an ingress or load
balancer host name, an address without SNI) gets the user's. So a user's certificate changes nothing
the cluster's own clients trust, and nothing has to be distributed to them (docs/certificates.md).

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

from recluster.certificates import UserCertificate, certificate_names
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
    (`use` swaps it). `wrap_bio` (asyncio's path) and `wrap_socket` are handed on; its own settings
    are never used."""

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


def own_name(server_name: str | None, own_names: list[str]) -> bool:
    """Whether a client asking for `server_name` (SNI; None: it sent none) is one of the cluster's
    own, which address a node by a name of its own certificate (a `*.` name covers one label)."""
    if not server_name:
        return False
    host = server_name.lower().rstrip(".")
    for pattern in own_names:
        pattern = pattern.lower()
        if pattern == host or (pattern.startswith("*.") and host.partition(".")[2] == pattern[2:]
                               and host.partition(".")[0]):
            return True
    return False


def user_context(certificate: UserCertificate, scratch: Path, own: ssl.SSLContext,
                 own_names: list[str]) -> ssl.SSLContext:
    """A server context of a user's (checked) certificate that hands a client naming one of
    `own_names` to `own`. OpenSSL loads a chain and key only from files: they are written to private
    files in `scratch` and removed once loaded."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        write_private(cert, certificate.chain)
        write_private(key, certificate.key)
        context = server_context(cert, key)

    def by_name(connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                _: ssl.SSLContext) -> None:
        if own_name(server_name, own_names):
            connection.context = own
    context.sni_callback = by_name
    return context


class ServedTls:
    """The contexts of this node's HTTPS servers, following the cluster state's user certificates."""

    def __init__(self, own_cert: Path, own_key: Path, scratch: Path) -> None:
        self.own_cert, self.own_key, self.scratch = own_cert, own_key, scratch
        self.own = server_context(own_cert, own_key)
        self.own_names = certificate_names(own_cert.read_text())
        self.contexts = {name: ReloadableContext(self.own) for name in SERVER_CERTIFICATES}
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
                context = user_context(certificate, self.scratch, self.own, self.own_names) \
                    if certificate else self.own
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
