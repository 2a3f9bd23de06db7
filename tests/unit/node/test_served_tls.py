"""The node's HTTPS servers' TLS (node/served_tls.py): a listener given a ReloadableContext serves, to
each new connection, the certificate it holds at that moment; a connection already open keeps its own.
Real TLS handshakes on 127.0.0.1 against an asyncio server, as uvicorn runs them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recluster.certificates import Authority, UserCertificate, check_served_certificate
from recluster.node.errors import ApiError
from recluster.node.proxy_certificate import _settable
from recluster.node.served_tls import API, CONSOLE, METRICS, ServedTls
from recluster.node.tls import ensure_certificate

pytestmark = pytest.mark.unit

# what the operator's node certificate carries (specs/names.py tls_names), shortened
OWN_NAMES = ["*.rec.ns.svc.cluster.local", "rec.ns.svc"]


def user(ca: Authority) -> UserCertificate:
    leaf = ca.issue("user", ["127.0.0.1"], days=1)
    checked = check_served_certificate(leaf.certificate, leaf.key, ca.pem().certificate)
    return UserCertificate(checked.chain, checked.key, checked.anchors)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ServedTls, int]]:
    cert, key = ensure_certificate(tmp_path / "tls", ["127.0.0.1", *OWN_NAMES])
    tls = ServedTls(cert, key, tmp_path / "scratch")
    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=tls.context(API))
    yield tls, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def connect(port: int, ca: str | None, name: str = "127.0.0.1"
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection naming `name` (an address: no SNI), verified against `ca` when given."""
    context = ssl.create_default_context(cadata=ca) if ca else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not ca:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=name)


def presented(writer: asyncio.StreamWriter) -> bytes:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert der is not None
    return bytes(der)


def der_of(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"ping\n")
    await writer.drain()
    return await asyncio.wait_for(reader.readline(), 5)


async def test_new_connections_get_the_new_certificate_open_ones_keep_theirs(
        served: tuple[ServedTls, int]) -> None:
    tls, port = served
    own = der_of(tls.own_cert.read_text())
    reader_before, before = await connect(port, None)
    assert presented(before) == own
    ca = Authority.create("user ca", days=2)
    certificate = user(ca)
    assert tls.follow({API: certificate}) == [API]
    assert tls.follow({API: certificate}) == []  # nothing to do when it is served already
    reader, writer = await connect(port, ca.pem().certificate)  # verified against the user's CA
    assert presented(writer) == der_of(certificate.chain)
    assert await round_trip(reader, writer) == b"ping\n"
    assert await round_trip(reader_before, before) == b"ping\n"  # the open connection is untouched
    assert presented(before) == own
    assert tls.follow({}) == [API]  # removed: the node's own again
    _, again = await connect(port, None)
    assert presented(again) == own
    for w in (writer, before, again):
        w.close()


async def test_the_clusters_own_clients_naming_an_own_name_keep_the_nodes_certificate(
        served: tuple[ServedTls, int]) -> None:
    """The operator and rigger name a pod (`rec-0.rec.ns.svc.cluster.local`), the admin CLI the
    Service (`rec.ns.svc`): they get the node's own certificate, which their CA verifies; an external
    name, or none, gets the user's."""
    tls, port = served
    own = der_of(tls.own_cert.read_text())
    ca = Authority.create("user ca", days=2)
    leaf = ca.issue("user", ["api.example.test", "rec.ns.svc.cluster.local"], days=1)
    checked = check_served_certificate(leaf.certificate, leaf.key, ca.pem().certificate)
    tls.follow({API: UserCertificate(checked.chain, checked.key, checked.anchors)})
    for name, expected in (("rec-0.rec.ns.svc.cluster.local", own), ("rec.ns.svc", own),
                           ("api.example.test", der_of(leaf.certificate)),
                           ("rec.ns.svc.cluster.local", der_of(leaf.certificate)),
                           ("x.rec-0.rec.ns.svc.cluster.local", der_of(leaf.certificate)),
                           ("127.0.0.1", der_of(leaf.certificate))):
        _, writer = await connect(port, None, name)
        assert presented(writer) == expected, name
        writer.close()
    _, writer = await connect(port, ca.pem().certificate, "api.example.test")  # verified by name
    writer.close()


def test_each_server_follows_its_own_name(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path / "tls", ["127.0.0.1"])
    tls = ServedTls(cert, key, tmp_path / "scratch")
    assert tls.follow({CONSOLE: user(Authority.create("ca", days=2))}) == [CONSOLE]
    assert tls.serving[CONSOLE] and not tls.serving[API] and not tls.serving[METRICS]
    assert not list((tmp_path / "scratch").iterdir())  # the key's scratch files are gone once loaded


def test_a_certificate_that_cannot_be_loaded_leaves_what_is_served(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path / "tls", ["127.0.0.1"])
    tls = ServedTls(cert, key, tmp_path / "scratch")
    good = user(Authority.create("ca", days=2))
    broken = UserCertificate(good.chain, user(Authority.create("other", days=2)).key, good.anchors)
    assert tls.follow({API: broken}) == []
    assert tls.serving[API] == ""


@pytest.mark.parametrize("name", ["proxy", "api", "cm", "metrics_exporter"])
def test_update_cert_takes_the_databases_and_the_https_servers_names(name: str) -> None:
    _settable(name)


@pytest.mark.parametrize(("name", "says"), [("syncer", "keeps the cluster's own"),
                                             ("web", "is not a certificate of the cluster")])
def test_other_names_are_refused_naming_what_can_be_set(name: str, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        _settable(name)
    assert refused.value.status == 400 and says in str(refused.value.message)
    assert "proxy, api, cm, metrics_exporter" in str(refused.value.message)
