"""Database TLS on a node: the certificates its TLS shards and its TLS sentinel serve, and how the
node itself connects to them.

The cluster has one CA for its databases, created with the cluster and kept in the cluster state (so
every node can sign; GET /v1/cluster/certificates publishes its certificate as `proxy_cert`, what
clients trust). Each node signs, for each TLS shard it runs, a certificate for every name a client
may use for that database (its Services in every naming and type, short and namespace-qualified, the
node's name and address, and the addresses of its LoadBalancer Services), and one for itself: its
TLS sentinel serves it, and the node, its sentinel and its replica shards present it as clients
(mutual TLS databases trust the cluster CA beside the certificates their users listed). Certificates
are renewed well before they expire and reissued when their names change (a pod back at a new
address, a LoadBalancer given an address).

A user may give the databases' certificate instead (REC `certificates.proxyCertificateSecretName`,
PUT /v1/cluster/update_cert): every TLS shard then serves it, and its CA joins every trust list of
the cluster's own clients (replicas verify their master, sentinels and probes the shards). A shard
keeps a node-issued certificate as its identity as a client (`tls-client-cert-file`: a replica's
link to an mTLS master), so the user's certificate needs no client usage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import asyncio as aioredis

from recluster.api.naming import BDB_NAME, REDIS_PORT, SERVICE_TYPES, service_name
from recluster.certificates import Authority, Pem, UserCertificate, certificate_names, issued_by, not_after
from recluster.node.processes import write_private
from recluster.node.records import BdbRecord, ClusterRecord

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_WITHIN = dt.timedelta(days=30)
# how long a certificate found current is not looked at again for the same names and trust (the node
# loop asks every pass; reading and parsing the files each time would be most of its work at rest)
RECHECK_S = 60.0
TLS_PROTOCOLS = "TLSv1.2 TLSv1.3"


def new_ca(cluster_name: str, now: dt.datetime | None = None) -> Pem:
    return Authority.create(f"{cluster_name} databases CA", days=CA_DAYS, now=now).pem()


def domain_suffixes(domain: str) -> list[str]:
    """`ns.svc.cluster.local` -> [`ns`, `ns.svc`, `ns.svc.cluster.local`]: the forms a Kubernetes
    client may append to a Service name (pure)."""
    labels = [label for label in domain.strip(".").split(".") if label]
    if not labels:
        return []
    forms = [labels[0]]
    if len(labels) > 1:
        forms.append(".".join(labels[:2]))
    if len(labels) > 2:
        forms.append(".".join(labels))
    return forms


def database_names(bdb: BdbRecord, node_name: str, node_addr: str, domain: str) -> list[str]:
    """Every name a client may reach a shard of `bdb` by (pure): its Services under either naming and
    of every type, short and in each namespace form, the node's own name and address (Sentinel
    discovery answers with the address), and the addresses outside the cluster (a LoadBalancer
    Service's, `external_addr`)."""
    services = [service_name(bdb.name, bdb.port, kind, naming)
                for naming in (BDB_NAME, REDIS_PORT) for kind in SERVICE_TYPES]
    names = [*services, *(f"{s}.{suffix}" for suffix in domain_suffixes(domain) for s in services)]
    return list(dict.fromkeys([*names, node_name, node_addr, *bdb.external_addr]))


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path  # the certificates this process trusts (as a server: its clients; as a client: servers)
    # a shard's identity as a client, apart from the certificate it serves (the node's are the same)
    client_cert: Path | None = None
    client_key: Path | None = None


def _stale(cert_path: Path, names: Sequence[str], trusted: str, ca_path: Path, ca: Pem,
           now: dt.datetime) -> bool:
    """Whether a certificate must be (re)issued: missing, for other names, with another trust list,
    signed by another CA than the one signing now (a rotation), or expiring within RENEW_WITHIN."""
    if not cert_path.exists() or not ca_path.exists() or ca_path.read_text() != trusted:
        return True
    text = cert_path.read_text()
    return sorted(certificate_names(text)) != sorted(set(names)) or not_after(text) - now < RENEW_WITHIN \
        or not issued_by(text, ca.certificate)


class DatabaseTls:
    """The node's database certificates on its volume. Made once per node runtime."""

    def __init__(self, data_dir: Path, node_name: str, node_addr: str, domain: str) -> None:
        self.data_dir = data_dir
        self.node_name, self.node_addr, self.domain = node_name, node_addr, domain
        self.node = node_files(data_dir)
        self.ca: Pem | None = None  # the cluster's database CA, from the last state the node loop read
        self.user: UserCertificate | None = None  # the user's database certificate, from the same state
        self.trust = ""  # what the cluster's own clients trust (ClusterRecord.database_trust)
        self._current: dict[Path, tuple[object, float]] = {}  # cert path -> (what it was checked for, when)

    def ensure_node(self, cluster: ClusterRecord, now: dt.datetime | None = None) -> bool:
        """The node's own certificate (its TLS sentinel's, and its identity as a client) is current,
        and its trust list (the database CA, the CA of the user's certificate when there is one, the
        next and previous CA during a rotation); True when it was (re)issued. Needs the CA."""
        ca = cluster.database_ca()
        assert ca is not None
        self.ca, self.user, self.trust = ca, cluster.proxy_certificate(), cluster.database_trust()
        return self._ensure(ca, self.node, [self.node_name, self.node_addr], self.trust, now)

    def ensure_shard(self, ca: Pem, bdb: BdbRecord, shard_dir: Path, now: dt.datetime | None = None) -> bool:
        """The certificate of this node's shard of `bdb` is current (in the shard's directory); True
        when it was (re)issued. Its trust list: the cluster CA, and for mutual TLS the clients'
        certificates the database lists."""
        names = database_names(bdb, self.node_name, self.node_addr, self.domain)
        trusted = trust_bundle(self.trust or ca.certificate, bdb)
        return self._ensure(ca, shard_files(shard_dir), names, trusted, now, self.user)

    def _ensure(self, ca: Pem, files: TlsFiles, names: list[str], trusted: str,
                now: dt.datetime | None, user: UserCertificate | None = None) -> bool:
        """Issue `files` for `names` with the trust list `trusted` unless they are current, and (for a
        shard) put what it serves in place: the user's certificate, else the one issued; whether
        anything changed. Found current, they are not read again for RECHECK_S."""
        now = now or dt.datetime.now(dt.UTC)
        wanted = (tuple(names), trusted, user.chain if user else "", ca.certificate)
        seen = self._current.get(files.cert)
        if seen is not None and seen[0] == wanted and 0 <= now.timestamp() - seen[1] < RECHECK_S:
            return False
        identity, identity_key = files.client_cert or files.cert, files.client_key or files.key
        issued = _stale(identity, names, trusted, files.ca, ca, now)
        if issued:
            leaf = Authority.from_pem(ca).issue(names[0], names, days=LEAF_DAYS, server=True, client=True,
                                                now=now)
            write_private(identity_key, leaf.key)
            identity.write_text(leaf.certificate)
            files.ca.write_text(trusted)
        if identity != files.cert:
            chain, key = served(user, identity, identity_key)
            if issued or not files.cert.exists() or files.cert.read_text() != chain:
                write_private(files.key, key)
                files.cert.write_text(chain)
                issued = True
        self._current[files.cert] = (wanted, now.timestamp())
        return issued

    def client_kwargs(self) -> dict[str, Any]:
        return node_client_tls(self.data_dir)


async def renew_contexts(clients: Iterable[aioredis.Redis]) -> None:
    """`clients` load the TLS files again on their next connection: redis-py keeps a connection's
    SSL context (trust list, own certificate) for the connection object's life, reconnections
    included, so a client made before a new CA was trusted would never verify what it signs."""
    for client in clients:
        pool = client.connection_pool
        await pool.disconnect()
        pool.reset()  # type: ignore[no-untyped-call]


def node_files(data_dir: Path) -> TlsFiles:
    directory = data_dir / "tls-databases"
    return TlsFiles(directory / "node.pem", directory / "node-key.pem", directory / "ca.pem")


def node_client_tls(data_dir: Path) -> dict[str, Any]:
    """redis-py arguments for the node's connections to TLS shards and sentinels: the server is
    checked against the cluster CA (which signs only this cluster's nodes and shards, so the chain is
    the identity; a pod back at a new address would fail a name check until its certificates are
    reissued), and the node presents its own certificate (mutual TLS)."""
    files = node_files(data_dir)
    return {"ssl": True, "ssl_ca_certs": str(files.ca), "ssl_certfile": str(files.cert),
            "ssl_keyfile": str(files.key), "ssl_check_hostname": False}


def shard_files(shard_dir: Path) -> TlsFiles:
    tls = shard_dir / "tls"
    return TlsFiles(tls / "cert.pem", tls / "key.pem", tls / "ca.pem",
                    client_cert=tls / "client.pem", client_key=tls / "client-key.pem")


def served(user: UserCertificate | None, issued_cert: Path, issued_key: Path) -> tuple[str, str]:
    """(certificate chain, key) a shard serves: the user's when given, else the one its node issued."""
    if user is not None:
        return user.chain, user.key
    return issued_cert.read_text(), issued_key.read_text()


def trust_bundle(ca_pem: str, bdb: BdbRecord) -> str:
    """What a shard of `bdb` trusts: the cluster's trust (`ca_pem`: the database CA, which signs its
    replicas', sentinels' and nodes' certificates, and the CA of a user's certificate, which its
    master serves), and with
    client authentication the certificates the database lists (each a trust anchor: a client's own
    self-signed certificate, or the CA that signs its clients)."""
    listed = [c.strip() + "\n" for c in bdb.client_certificates()] if bdb.client_auth() else []
    return "".join([ca_pem.strip() + "\n", *listed])


def shard_directives(bdb: BdbRecord, shard_dir: Path) -> list[str]:
    """redis.conf lines of a TLS shard: TLS only on the database's port, replication over TLS,
    client certificates required when the database enforces them (pure)."""
    files = shard_files(shard_dir)
    return [
        "port 0",
        f"tls-port {bdb.port}",
        f"tls-cert-file {files.cert}",
        f"tls-key-file {files.key}",
        f"tls-ca-cert-file {files.ca}",
        f"tls-client-cert-file {files.client_cert}",
        f"tls-client-key-file {files.client_key}",
        f"tls-auth-clients {'yes' if bdb.client_auth() else 'no'}",
        "tls-replication yes",
        f'tls-protocols "{TLS_PROTOCOLS}"',
    ]


def sentinel_directives(files: TlsFiles, port: int) -> list[str]:
    """sentinel.conf lines of the node's TLS sentinel: TLS to clients, to its peers and to every
    instance it monitors; discovery clients need no certificate of their own (as on 8001)."""
    return [
        "port 0",
        f"tls-port {port}",
        f"tls-cert-file {files.cert}",
        f"tls-key-file {files.key}",
        f"tls-ca-cert-file {files.ca}",
        "tls-auth-clients no",
        "tls-replication yes",
        f'tls-protocols "{TLS_PROTOCOLS}"',
    ]
