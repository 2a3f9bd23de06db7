"""Properties of the decisions over any stored state and any request: only the statuses the spec
lists for each endpoint, a 4xx never comes with a change to record (the spec: resources stay
semantically unchanged), and every 202 names the operation the platform must poll."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.broker.catalog import binding_user_name, build_catalog
from recluster.broker.decisions import (
    Decision,
    decide_bind,
    decide_deprovision,
    decide_provision,
    decide_unbind,
    decide_update,
)
from recluster.broker.errors import BrokerError
from recluster.broker.models import Binding, BindRequest, Instance, Operation, ProvisionRequest, UpdateRequest

pytestmark = pytest.mark.unit

CATALOG = build_catalog(None)
SERVICE = CATALOG.service_id
PLANS = [p.id for p in CATALOG.plans]
STATES = ["provisioning", "provisioned", "updating", "deprovisioning", "failed", "deleted"]
KINDS = {"provisioning": "provision", "updating": "update", "deprovisioning": "deprovision"}

plan_ids = st.sampled_from([*PLANS, "unknown-plan"])
parameters = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "eviction_policy": st.sampled_from(["noeviction", "allkeys-lru", "bogus"]),
    "persistence": st.sampled_from(["disabled", "aofAlways", "bogus"])}))


@st.composite
def stored(draw: st.DrawFn) -> tuple[Instance | None, Operation | None]:
    state = draw(st.one_of(st.none(), st.sampled_from(STATES)))
    if state is None:
        return None, None
    instance = Instance(id="i1", service_id=SERVICE, plan_id=draw(st.sampled_from(PLANS)),
                        parameters=draw(parameters) or {}, organization_guid="o", space_guid="s",
                        bdb_name="osb-i1", state=state)
    op_state = "in progress" if state in KINDS else draw(st.sampled_from(["succeeded", "failed"]))
    kind = KINDS.get(state, "provision")
    operation = Operation.model_validate({"id": "op-1", "instance_id": "i1", "kind": kind, "state": op_state,
                                         "target_plan_id": instance.plan_id,
                                         "target_parameters": instance.parameters})
    return instance, operation


def outcome(call: Any) -> tuple[int, Decision | None]:
    try:
        decision = call()
    except BrokerError as exc:
        assert exc.body()["description"]
        assert exc.error in (None, "AsyncRequired", "ConcurrencyError", "MaintenanceInfoConflict")
        return exc.status, None
    return decision.status, decision


def check(status: int, decision: Decision | None, allowed: set[int]) -> None:
    assert status in allowed
    if decision is None:
        return
    if status == 202:
        assert decision.body.get("operation")
    if decision.operation is not None:
        assert status == 202 and decision.body == {"operation": decision.operation.id}
        assert decision.instance is not None and decision.instance.state in KINDS


@given(stored(), plan_ids, parameters, st.booleans(), st.sampled_from([SERVICE, "other-service"]))
def test_provision(record: tuple[Instance | None, Operation | None], plan_id: str,
                   params: dict[str, Any] | None, accepts: bool, service_id: str) -> None:
    instance, current = record
    request = ProvisionRequest.model_validate({"service_id": service_id, "plan_id": plan_id,
                                               "organization_guid": "o", "space_guid": "s",
                                               "parameters": params})
    status, decision = outcome(lambda: decide_provision(CATALOG, "i1", request, accepts, instance, current,
                                                        "op-2", 0.0))
    check(status, decision, {200, 201, 202, 400, 409, 422})
    if status == 202 and not accepts:
        raise AssertionError("202 without accepts_incomplete=true")


@given(stored(), st.one_of(st.none(), plan_ids), parameters, st.booleans())
def test_update(record: tuple[Instance | None, Operation | None], plan_id: str | None,
                params: dict[str, Any] | None, accepts: bool) -> None:
    instance, current = record
    request = UpdateRequest.model_validate({"service_id": SERVICE, "plan_id": plan_id, "parameters": params})
    status, decision = outcome(lambda: decide_update(CATALOG, "i1", request, accepts, instance, current,
                                                     "op-2", 0.0))
    # 404: the spec names no code for an unknown instance here
    check(status, decision, {200, 202, 400, 404, 422})
    assert not (status == 202 and not accepts)


@given(stored(), st.one_of(st.none(), plan_ids), st.booleans())
def test_deprovision(record: tuple[Instance | None, Operation | None], plan_id: str | None,
                     accepts: bool) -> None:
    instance, current = record
    status, decision = outcome(lambda: decide_deprovision(CATALOG, "i1", SERVICE, plan_id, accepts, instance,
                                                          current, "op-2", 0.0))
    check(status, decision, {200, 202, 400, 410, 422})
    if instance is None or instance.state == "deleted":
        assert status in (400, 410)


@st.composite
def stored_binding(draw: st.DrawFn) -> Binding | None:
    if draw(st.booleans()):
        return None
    with_user = draw(st.booleans())
    state = draw(st.sampled_from(["creating", "created", "deleting"])) if with_user else "created"
    return Binding(instance_id="i1", id="b1", service_id=SERVICE, plan_id=draw(st.sampled_from(PLANS)),
                   app_guid=draw(st.sampled_from(["app", "other"])), state=state,
                   username=binding_user_name("i1", "b1") if with_user else None,
                   password="recorded-password" if with_user else None)


@given(stored(), stored_binding(), plan_ids, st.sampled_from(["app", "other"]))
def test_bind(record: tuple[Instance | None, Operation | None], existing: Binding | None, plan_id: str,
              app: str) -> None:
    """Only the spec's statuses; a user is made only for a 201 and always with the password the
    binding was first recorded with (a repeat never hands out another one); a 4xx changes nothing."""
    instance, _ = record
    request = BindRequest.model_validate({"service_id": SERVICE, "plan_id": plan_id, "app_guid": app})
    status, decision = outcome(lambda: decide_bind(CATALOG, "i1", "b1", request, instance, existing, 0.0,
                                                   "fresh-password"))
    assert status in {200, 201, 400, 404, 409, 422}
    if decision is None:
        return
    assert decision.grant == (status == 201)
    if status == 201:
        assert decision.binding is not None and decision.binding.state == "creating"
        assert decision.binding.username == binding_user_name("i1", "b1")
        expected = existing.password if existing is not None else "fresh-password"
        assert decision.binding.password == expected
    else:
        assert decision.binding is None and existing is not None and existing.state == "created"


@given(stored_binding(), st.sampled_from([None, *PLANS]))
def test_unbind(existing: Binding | None, plan_id: str | None) -> None:
    """200 (its user removed first when it has one) or 410; never another binding's user."""
    status, decision = outcome(lambda: decide_unbind(CATALOG, "i1", "b1", SERVICE, plan_id, existing))
    assert status in {200, 400, 410}
    if decision is not None:
        assert decision.delete_binding
        assert (decision.binding is not None) == (existing is not None and existing.has_user)
        if decision.binding is not None:
            assert existing is not None and decision.binding.username == existing.username
            assert decision.binding.state == "deleting"
