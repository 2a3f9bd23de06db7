"""What each OSB request gets, decided from the stored records alone: the status code, the body,
and the change to record. Pure (no I/O), so every status-code rule of the specification is a unit
test. The handlers load the records, call these, write the change and start the worker."""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from recluster.api.naming import BDB_NAME, DEFAULT_SERVICE_TYPES, service_name
from recluster.api.ports import SENTINEL_PORT, SENTINEL_TLS_PORT
from recluster.broker import errors
from recluster.broker.catalog import Catalog, Plan, binding_user_name, database_name, validate_parameters
from recluster.broker.models import (
    Binding,
    BindRequest,
    Instance,
    Operation,
    ProvisionRequest,
    UpdateRequest,
)
from recluster.http_limits import loads

# Versions this broker serves: 2.14 added the fetch endpoints it declares in the catalog; later
# minors are additive (the spec's change policy), so any 2.x from 2.14 on is accepted.
MIN_MINOR = 14
API_VERSION_RE = re.compile(r"^(\d{1,9})\.(\d{1,9})$")  # bounded: int() of 4300+ digits raises
EMPTY_BINDING_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass
class Decision:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    instance: Instance | None = None  # to write
    operation: Operation | None = None  # to write and start
    binding: Binding | None = None  # to write before anything else is done
    grant: bool = False  # make `binding`'s user on the cluster, then record it created
    delete_binding: bool = False


# ---- headers -------------------------------------------------------------------------------


def check_api_version(header: str | None) -> None:
    """The spec (2.16+): a request without the required X-Broker-API-Version header is malformed
    (400 Bad Request); a version the broker does not serve gets 412 Precondition Failed."""
    supported = f"2.{MIN_MINOR} or later 2.x (this broker implements 2.17)"
    if header is None or not header.strip():
        raise errors.bad_request(f"the X-Broker-API-Version header is required; use {supported}")
    match = API_VERSION_RE.match(header.strip())
    if match is None:
        raise errors.bad_request(f"X-Broker-API-Version must be MAJOR.MINOR; use {supported}")
    major, minor = int(match[1]), int(match[2])
    if major != 2 or minor < MIN_MINOR:
        raise errors.precondition_failed(f"API version {major}.{minor} is not supported; use {supported}")


def parse_originating_identity(header: str | None) -> str:
    """`platform base64(json)` -> a short audit string ("platform user_id=..."); 400 if malformed."""
    if header is None:
        return ""
    parts = header.strip().split(" ")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise errors.bad_request("X-Broker-API-Originating-Identity must be '<platform> <base64 JSON>'")
    platform, value = parts
    try:
        decoded = loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise errors.bad_request("X-Broker-API-Originating-Identity: the value is not base64 of a JSON "
                                 "object") from exc
    if not isinstance(decoded, dict):
        raise errors.bad_request("X-Broker-API-Originating-Identity: the value must be a JSON object")
    # Only identifiers are kept for the audit trail (user_id on Cloud Foundry, username on Kubernetes).
    who = next((f"{key}={decoded[key]}" for key in ("user_id", "username", "uid")
                if isinstance(decoded.get(key), str)), "")
    return f"{platform} {who}".strip()


# ---- shared checks -------------------------------------------------------------------------


def _service(catalog: Catalog, service_id: str | None) -> None:
    if not service_id:
        raise errors.bad_request("'service_id' is required")
    if service_id != catalog.service_id:
        raise errors.bad_request(f"'service_id': not a service of this broker's catalog "
                                 f"(the service is '{catalog.service_id}')")


def _service_and_plan(catalog: Catalog, service_id: str | None, plan_id: str | None) -> Plan:
    _service(catalog, service_id)
    if not plan_id:
        raise errors.bad_request("'plan_id' is required")
    plan = catalog.plan(plan_id)
    if plan is None:
        raise errors.bad_request("'plan_id': not a plan of this broker's catalog (see GET /v2/catalog)")
    return plan


def _known_ids(catalog: Catalog, service_id: str | None, plan_id: str | None,
               recorded_plan: str | None) -> None:
    """For deletes: the plan may also be the one recorded for the resource, so an instance or
    binding of a plan since removed from the catalog can still be deleted."""
    _service(catalog, service_id)
    if not plan_id:
        raise errors.bad_request("'plan_id' is required")
    if catalog.plan(plan_id) is None and plan_id != recorded_plan:
        raise errors.bad_request("'plan_id': not a plan of this broker's catalog (see GET /v2/catalog)")


def _parameters(plan: Plan, parameters: dict[str, Any] | None) -> None:
    problems = validate_parameters(parameters, plan.instance_schema())
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise errors.bad_request(f"invalid parameters for plan '{plan.name}': {problems[0]}{more}")


def _maintenance(plan: Plan, version: str | None) -> None:
    if version is not None and plan.maintenance_version is not None and version != plan.maintenance_version:
        raise errors.maintenance_info_conflict()


def _busy(instance_id: str) -> errors.BrokerError:
    return errors.concurrency_error(f"another operation for service instance '{instance_id}' is in progress")


def _live(instance: Instance | None) -> Instance | None:
    return instance if instance is not None and instance.state != "deleted" else None


# ---- service instances ---------------------------------------------------------------------


def decide_provision(catalog: Catalog, instance_id: str, request: ProvisionRequest, accepts_incomplete: bool,
                     existing: Instance | None, current: Operation | None, new_operation_id: str,
                     now: float, identity: str = "") -> Decision:
    plan = _service_and_plan(catalog, request.service_id, request.plan_id)
    _parameters(plan, request.parameters)
    _maintenance(plan, request.maintenance_info.version if request.maintenance_info else None)
    existing = _live(existing)
    if existing is not None:
        same = (existing.service_id == request.service_id and existing.plan_id == request.plan_id
                and existing.parameters == (request.parameters or {})
                and existing.organization_guid == request.organization_guid
                and existing.space_guid == request.space_guid)
        if not same:
            raise errors.conflict(f"service instance '{instance_id}' exists with different attributes")
        if existing.state in ("provisioned", "updating"):
            return Decision(200, {})
        if existing.state == "deprovisioning":
            raise errors.concurrency_error(f"service instance '{instance_id}' is being deprovisioned")
        if not accepts_incomplete:
            raise errors.async_required()
        if existing.state == "provisioning" and current is not None and current.state == "in progress":
            return Decision(202, {"operation": current.id})
        # a failed provision asked again: try again under a new operation
    elif not accepts_incomplete:
        raise errors.async_required()
    instance = Instance(
        id=instance_id, service_id=request.service_id, plan_id=request.plan_id,
        parameters=request.parameters or {}, context=request.context or {},
        organization_guid=request.organization_guid, space_guid=request.space_guid,
        bdb_name=database_name(instance_id), bdb_uid=existing.bdb_uid if existing else None,
        state="provisioning", created=existing.created if existing else _iso(now))
    operation = Operation(id=new_operation_id, instance_id=instance_id, kind="provision",
                          description="creating the database", target_plan_id=plan.id,
                          target_parameters=instance.parameters, originating_identity=identity, started=now)
    return Decision(202, {"operation": operation.id}, instance=instance, operation=operation)


def decide_update(catalog: Catalog, instance_id: str, request: UpdateRequest, accepts_incomplete: bool,
                  existing: Instance | None, current: Operation | None, new_operation_id: str,
                  now: float, identity: str = "") -> Decision:
    _service(catalog, request.service_id)
    if request.plan_id is not None:
        _service_and_plan(catalog, request.service_id, request.plan_id)
    existing = _live(existing)
    if existing is None:
        raise errors.not_found(f"service instance '{instance_id}' does not exist")
    plan = _service_and_plan(catalog, request.service_id, request.plan_id or existing.plan_id)
    _parameters(plan, request.parameters)
    _maintenance(plan, request.maintenance_info.version if request.maintenance_info else None)
    parameters = {**existing.parameters, **(request.parameters or {})}
    if existing.state in ("provisioning", "deprovisioning"):
        raise _busy(instance_id)
    if existing.state == "failed":
        raise errors.unprocessable(f"service instance '{instance_id}' failed to provision; deprovision it")
    if existing.state == "updating":
        if (current is not None and current.kind == "update" and current.state == "in progress"
                and current.target_plan_id == plan.id and current.target_parameters == parameters):
            if not accepts_incomplete:
                raise errors.async_required()
            return Decision(202, {"operation": current.id})
        raise _busy(instance_id)
    if plan.id == existing.plan_id and parameters == existing.parameters:
        return Decision(200, {})  # nothing to change (a context-only update, or a repeat of a done one)
    if not accepts_incomplete:
        raise errors.async_required()
    instance = existing.model_copy(update={"state": "updating"})
    operation = Operation(id=new_operation_id, instance_id=instance_id, kind="update",
                          description=f"changing the database to plan '{plan.name}'", target_plan_id=plan.id,
                          target_parameters=parameters, previous_state="provisioned",
                          originating_identity=identity, started=now)
    return Decision(202, {"operation": operation.id}, instance=instance, operation=operation)


def decide_deprovision(catalog: Catalog, instance_id: str, service_id: str | None, plan_id: str | None,
                       accepts_incomplete: bool, existing: Instance | None, current: Operation | None,
                       new_operation_id: str, now: float, identity: str = "") -> Decision:
    _known_ids(catalog, service_id, plan_id, existing.plan_id if existing else None)
    existing = _live(existing)
    if existing is None:
        raise errors.gone(f"service instance '{instance_id}' does not exist")
    if existing.state == "deprovisioning" and current is not None and current.kind == "deprovision":
        if not accepts_incomplete:
            raise errors.async_required()
        return Decision(202, {"operation": current.id})
    if existing.state in ("provisioning", "updating"):
        raise _busy(instance_id)
    if not accepts_incomplete:
        raise errors.async_required()
    instance = existing.model_copy(update={"state": "deprovisioning"})
    operation = Operation(id=new_operation_id, instance_id=instance_id, kind="deprovision",
                          description="deleting the database", previous_state=existing.state,
                          originating_identity=identity, started=now)
    return Decision(202, {"operation": operation.id}, instance=instance, operation=operation)


def decide_last_operation(instance_id: str, existing: Instance | None, operations: list[Operation],
                          operation_id: str | None) -> Decision:
    """`operations` newest first. 410 once the instance was deleted (the success of an async delete,
    known by its tombstone record), 404 for an instance this broker never had (the spec's two cases)."""
    if existing is None:
        raise errors.not_found(f"service instance '{instance_id}' does not exist")
    if existing.state == "deleted":
        raise errors.gone(f"service instance '{instance_id}' was deleted")
    if operation_id is not None:
        chosen = next((o for o in operations if o.id == operation_id), None)
        if chosen is None:
            raise errors.bad_request(f"'operation': not an operation of service instance '{instance_id}'")
    elif operations:
        chosen = operations[0]
    else:
        return Decision(200, {"state": "succeeded", "description": "no operation recorded"})
    body: dict[str, Any] = {"state": chosen.state, "description": chosen.description or chosen.state}
    if chosen.state == "failed" and chosen.kind in ("update", "deprovision"):
        # the database was left as it was: usable unless it never got provisioned
        body["instance_usable"] = existing.state != "failed"
        if chosen.kind == "update":
            body["update_repeatable"] = True
    return Decision(200, body)


def decide_fetch_instance(instance_id: str, existing: Instance | None, catalog: Catalog) -> Decision:
    existing = _live(existing)
    if existing is None or existing.state in ("provisioning", "failed"):
        raise errors.not_found(f"service instance '{instance_id}' does not exist or is being provisioned")
    if existing.state == "updating":
        raise errors.concurrency_error(f"service instance '{instance_id}' is being updated")
    body: dict[str, Any] = {"service_id": existing.service_id, "plan_id": existing.plan_id,
                            "parameters": existing.parameters}
    plan = catalog.plan(existing.plan_id)
    if plan is not None and plan.maintenance_version:
        body["maintenance_info"] = {"version": plan.maintenance_version}
    return Decision(200, body)


# ---- service bindings ----------------------------------------------------------------------


def decide_bind(catalog: Catalog, instance_id: str, binding_id: str, request: BindRequest,
                instance: Instance | None, existing: Binding | None, now: float,
                new_password: str) -> Decision:
    """201 with a binding whose user the handler makes on the cluster (`grant`: a new binding, or
    one an earlier attempt recorded but did not finish: its user and password are kept, so every
    attempt hands out the same credentials), 200 for an identical repeat of a created one, 409 for
    a different one. `new_password`: the password a new binding's user gets (random, chosen by the
    caller so this stays pure)."""
    plan = _service_and_plan(catalog, request.service_id, request.plan_id)
    problems = validate_parameters(request.parameters, EMPTY_BINDING_SCHEMA)
    if problems:
        raise errors.bad_request(f"invalid binding parameters: {problems[0]}")
    instance = _live(instance)
    if instance is None:
        raise errors.not_found(f"service instance '{instance_id}' does not exist")
    if plan.id != instance.plan_id:
        raise errors.bad_request(f"'plan_id': service instance '{instance_id}' uses another plan")
    _bindable(instance)
    binding = Binding(
        instance_id=instance_id, id=binding_id, service_id=request.service_id, plan_id=request.plan_id,
        parameters=request.parameters or {},
        app_guid=request.app_guid or (request.bind_resource.app_guid if request.bind_resource else None),
        bind_resource=request.bind_resource.model_dump(exclude_none=True) if request.bind_resource else {},
        context=request.context or {}, created=_iso(now), state="creating",
        username=binding_user_name(instance_id, binding_id), password=new_password)
    if existing is not None:
        same = (existing.service_id == binding.service_id and existing.plan_id == binding.plan_id
                and existing.parameters == binding.parameters and existing.app_guid == binding.app_guid
                and existing.bind_resource == binding.bind_resource)
        if not same:
            raise errors.conflict(f"service binding '{binding_id}' exists with different attributes")
        if existing.state == "deleting":
            raise errors.concurrency_error(f"service binding '{binding_id}' is being deleted")
        if existing.state == "creating":
            return Decision(201, {}, binding=existing, grant=True)
        return Decision(200, {})
    return Decision(201, {}, binding=binding, grant=True)


def check_grantable(instance_id: str, binding_id: str, instance: Instance | None,
                    binding: Binding | None) -> Binding:
    """Just before a binding's user is made (the records read again, under the instance's lock):
    the binding is still wanted and its instance still there; the binding to grant."""
    instance = _live(instance)
    if instance is None:
        raise errors.not_found(f"service instance '{instance_id}' does not exist")
    _bindable(instance)
    if binding is None or binding.state == "deleting" or not binding.has_user:
        raise errors.concurrency_error(f"service binding '{binding_id}' was deleted meanwhile")
    return binding


def _bindable(instance: Instance) -> None:
    if instance.state in ("provisioning", "deprovisioning"):
        raise _busy(instance.id)
    if instance.state == "failed":
        raise errors.unprocessable(f"service instance '{instance.id}' failed to provision; it cannot be "
                                   "bound")


def decide_unbind(catalog: Catalog, instance_id: str, binding_id: str, service_id: str | None,
                  plan_id: str | None, existing: Binding | None) -> Decision:
    """200 once the binding's user is gone: `revoke` is the binding (marked deleting, recorded first)
    whose user the handler removes before it deletes the record; None for a binding without one."""
    _known_ids(catalog, service_id, plan_id, existing.plan_id if existing else None)
    if existing is None or existing.instance_id != instance_id:
        raise errors.gone(f"service binding '{binding_id}' does not exist")
    revoke = existing.model_copy(update={"state": "deleting"}) if existing.has_user else None
    return Decision(200, {}, binding=revoke, delete_binding=True)


def decide_fetch_binding(instance_id: str, binding_id: str, instance: Instance | None,
                         existing: Binding | None) -> Decision:
    if _live(instance) is None or existing is None or existing.state != "created":
        raise errors.not_found(f"service binding '{binding_id}' does not exist")
    return Decision(200, {"parameters": existing.parameters})


# ---- a binding's user on the cluster ------------------------------------------------------


def named(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The REST object (user, role, Redis ACL) of that name: the cluster's names are unique
    regardless of case."""
    return next((o for o in objects if str(o.get("name", "")).lower() == name.lower()), None)


def permissions_of(bdb: dict[str, Any]) -> list[dict[str, int]]:
    """A bdb's `roles_permissions` as the REST API takes them back."""
    return [{"role_uid": int(p["role_uid"]), "redis_acl_uid": int(p["redis_acl_uid"])}
            for p in bdb.get("roles_permissions") or []]


def with_permission(current: list[dict[str, int]], role_uid: int,
                    acl_uid: int) -> list[dict[str, int]] | None:
    """`roles_permissions` giving the role that ACL, every other entry kept as it is; None when
    nothing changes."""
    wanted = {"role_uid": role_uid, "redis_acl_uid": acl_uid}
    if wanted in current:
        return None
    return [p for p in current if p["role_uid"] != role_uid] + [wanted]


def without_permissions(current: list[dict[str, int]],
                        role_uids: Iterable[int]) -> list[dict[str, int]] | None:
    """`roles_permissions` without those roles, every other entry kept; None when nothing changes."""
    gone = set(role_uids)
    kept = [p for p in current if p["role_uid"] not in gone]
    return kept if len(kept) != len(current) else None


def repointed(current: list[dict[str, int]], role_uids: Iterable[int],
              acl_uid: int) -> list[dict[str, int]] | None:
    """`roles_permissions` where those roles (the bindings' of an instance whose plan changed) that
    have an entry get that ACL; other entries kept; None when nothing changes."""
    mine = set(role_uids)
    changed = [{**p, "redis_acl_uid": acl_uid} if p["role_uid"] in mine else p for p in current]
    return changed if changed != current else None


# ---- credentials ---------------------------------------------------------------------------

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


def _iso(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
