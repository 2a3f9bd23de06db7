"""Helpers of the node tests that write through Sentinel, and what a TLS server presents."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import redis


def peer_certificate(address: str, port: int, server_name: str | None = None,
                     ca: Path | None = None) -> bytes:
    """The DER certificate a TLS server at `address` presents; with `ca`, checked against it for
    `server_name`, else not checked (what is served, not whether it is trusted)."""
    if ca is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((address, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_name or address) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der(pem: str) -> bytes:
    """The DER form of the first certificate of a PEM text (what a server presents first)."""
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(pem.split(end)[0] + end + "\n")


async def write_confirmed(client: redis.Redis, count: int, timeout_s: float = 60) -> list[str]:
    """Write keys k0, k1, ... until `count` of them were confirmed by a replica (WAIT 1); the keys
    confirmed. Writes refused meanwhile (the replica still attaching) are retried."""
    deadline = time.monotonic() + timeout_s
    confirmed: list[str] = []
    while len(confirmed) < count:
        assert time.monotonic() < deadline, f"writes were not confirmed by a replica within {timeout_s:.0f} s"
        key = f"k{len(confirmed)}"
        try:
            await asyncio.to_thread(client.set, key, key)
            if await asyncio.to_thread(client.execute_command, "WAIT", 1, 1000) >= 1:
                confirmed.append(key)
        except redis.RedisError:
            await asyncio.sleep(0.2)
    return confirmed


def closed_by_server(connection: redis.Connection, *command: str) -> bool:
    """Whether the server closed this one connection (`command`, PING by default, fails on it
    without a new connection being made: a deleted ACL user's open connection, for example)."""
    try:
        connection.send_command(*(command or ("PING",)))
        connection.read_response()
    except redis.exceptions.AuthenticationError:
        raise
    except (redis.exceptions.ConnectionError, OSError):
        return True
    return False
