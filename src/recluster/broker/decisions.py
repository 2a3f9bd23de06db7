"""What each OSB request about service instances and bindings gets, decided from the stored records
alone: the status code, the body, and the change to record. Pure (no I/O), so every status-code rule
of the specification is a unit test. The handlers load the records, call these, write the change and
start the worker. The request headers are request_headers.py, a binding's credentials
binding_credentials.py, its role's permissions binding_permissions.py (all pure too)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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


def _iso(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
