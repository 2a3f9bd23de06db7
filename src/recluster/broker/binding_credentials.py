"""What a binding hands the application: the database's address (its Service, stable across
failovers), the Sentinels beside it, the binding's user and password, the URI, and the spec's
`endpoints`. Pure: built from the REST API's bdb, shards and nodes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from recluster.api.naming import BDB_NAME, DEFAULT_SERVICE_TYPES, service_name
from recluster.api.ports import SENTINEL_PORT, SENTINEL_TLS_PORT
from recluster.broker import errors
from recluster.broker.models import Binding

SHARED_PASSWORD_NOTE = (
    "This binding was made before bindings got users of their own: it carries the database "  # noqa: S105
    "password, shared by every such binding of the instance, and unbinding does not revoke it. "
    "Bind again for a user of its own.")


@dataclass(frozen=True)
class ServiceNaming:
    """How clients reach a database: the Service the services rigger keeps pointed at its master,
    named as the REC's servicesRiggerSpec says (`types`: databaseServiceType, the first is what
    clients use; `naming`: serviceNaming), in the DNS domain of the REC's namespace (`domain`,
    `<namespace>.svc.<cluster domain>`). No domain (a cluster outside Kubernetes): no Service, the
    node holding the master is named instead."""

    domain: str = ""
    types: tuple[str, ...] = DEFAULT_SERVICE_TYPES
    naming: str = BDB_NAME

    def host(self, bdb_name: str, port: int) -> str | None:
        if not self.domain:
            return None
        return f"{service_name(bdb_name, port, self.types[0], self.naming)}.{self.domain.strip('.')}"


def credentials_for(bdb: dict[str, Any], nodes: list[dict[str, Any]], binding: Binding,
                    services: ServiceNaming, ca: str = "") -> dict[str, Any]:
    """The binding's credentials from the REST API's bdb and nodes: the database's Service address
    (stable across failovers; the master's node outside Kubernetes), the Sentinel addresses beside it
    (clients that follow failover themselves use these with the database name), the binding's own
    user and password and a redis:// URI with them (rediss:// for a TLS database, with the CA to
    verify it, `ca`, and the TLS sentinels). A binding made before bindings had users carries the
    database password, and says so."""
    tls = bdb.get("tls_mode") == "enabled"
    port = int(bdb["port"])
    host = services.host(str(bdb["name"]), port)
    if host is None:
        endpoints = bdb.get("endpoints") or []
        if not endpoints:
            raise errors.BrokerError(503, "the database has no endpoint yet; retry shortly")
        endpoint = endpoints[0]
        host = str(endpoint.get("dns_name") or (endpoint.get("addr") or [""])[0])
        port = int(endpoint.get("port") or port)
    key, default = ("sentinel_tls", SENTINEL_TLS_PORT) if tls else ("sentinel", SENTINEL_PORT)
    sentinels: list[dict[str, Any]] = [{"host": str(n.get("name") or n["addr"]),
                                        "port": int(n.get("ports", {}).get(key, default))}
                                       for n in sorted(nodes, key=lambda n: int(n.get("uid", 0)))
                                       if n.get("status") != "decommissioning"]
    if binding.has_user:
        username, password = str(binding.username), binding.password or ""
        user: dict[str, Any] = {"username": username, "password": password}
        auth = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    else:
        password = bdb.get("authentication_redis_pass") or ""
        user = {"username": "default", "password": password, "binding_user": False, "shared_password": True,
                "note": SHARED_PASSWORD_NOTE}
        auth = f":{quote(password, safe='')}@" if password else ""
    return {
        "host": host,
        "port": port,
        **user,
        "name": bdb["name"],
        "uri": f"{'rediss' if tls else 'redis'}://{auth}{_uri_host(host)}:{port}",
        "sentinel_master_name": bdb["name"],
        "sentinels": sentinels,
        "sentinel_addresses": [f"{_uri_host(s['host'])}:{s['port']}" for s in sentinels],
        "tls": tls,
        **({"ca_certificate": ca} if tls else {}),
    }


def binding_endpoints(credentials: dict[str, Any], hosts: list[str] | None = None) -> list[dict[str, Any]]:
    """The spec's `endpoints` (every address the application's traffic may go to): the database's
    address, the nodes holding a shard (the pods behind that address as the master moves, same
    port), every Sentinel."""
    port = str(credentials["port"])
    found = [{"host": credentials["host"], "ports": [port], "protocol": "tcp"}]
    found += [{"host": h, "ports": [port], "protocol": "tcp"}
              for h in dict.fromkeys(hosts or []) if h != credentials["host"]]
    found += [{"host": s["host"], "ports": [str(s["port"])], "protocol": "tcp"}
              for s in credentials["sentinels"]]
    return found


def shard_hosts(shards: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[str]:
    """Host names of the nodes holding the database's shards (REST shard and node objects)."""
    names = {str(n.get("uid")): str(n.get("name") or n.get("addr")) for n in nodes}
    return [names[str(s["node_uid"])] for s in sorted(shards, key=lambda s: str(s.get("role")))
            if str(s.get("node_uid")) in names]


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

