"""Status codes and bodies of every OSB request, decided from records alone (the spec's rules)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.naming import service_name
from recluster.broker.binding_credentials import (
    ServiceNaming,
    binding_endpoints,
    credentials_for,
    shard_hosts,
)
from recluster.broker.binding_permissions import (
    named,
    permissions_of,
    repointed,
    with_permission,
    without_permissions,
)
from recluster.broker.catalog import binding_user_name, build_catalog
from recluster.broker.decisions import (
    check_grantable,
    decide_bind,
    decide_deprovision,
    decide_fetch_binding,
    decide_fetch_instance,
    decide_last_operation,
    decide_provision,
    decide_unbind,
    decide_update,
)
from recluster.broker.errors import BrokerError
from recluster.broker.models import (
    Binding,
    BindRequest,
    Instance,
    InstanceState,
    Operation,
    ProvisionRequest,
    UpdateRequest,
)
from recluster.broker.request_headers import check_api_version, parse_originating_identity

pytestmark = pytest.mark.unit

CATALOG = build_catalog({"plans": [
    {"name": "small", "memory": "100MB"},
    {"name": "medium", "memory": "1GB", "replication": True, "maintenance_version": "2.0.0"},
]})
SERVICE = CATALOG.service_id
SMALL, MEDIUM = CATALOG.plans[0].id, CATALOG.plans[1].id
NOW = 1_700_000_000.0


def provision_request(**changes: Any) -> ProvisionRequest:
    body: dict[str, Any] = {"service_id": SERVICE, "plan_id": SMALL, "organization_guid": "o",
                            "space_guid": "s"}
    body.update(changes)
    return ProvisionRequest.model_validate(body)


def instance(state: InstanceState = "provisioned", **changes: Any) -> Instance:
    fields: dict[str, Any] = {"id": "i1", "service_id": SERVICE, "plan_id": SMALL, "organization_guid": "o",
                              "space_guid": "s", "bdb_name": "osb-i1", "bdb_uid": 3, "state": state}
    fields.update(changes)
    return Instance(**fields)


def operation(kind: str = "provision", state: str = "in progress", **changes: Any) -> Operation:
    return Operation.model_validate({"id": f"{kind}-1", "instance_id": "i1", "kind": kind, "state": state,
                                     "started": NOW, **changes})


def fails(status: int, error: str | None = None) -> Any:
    class Check:
        def __enter__(self) -> None:
            return None

        def __exit__(self, kind: object, exc: object, tb: object) -> bool:
            assert isinstance(exc, BrokerError), f"expected {status}, nothing was raised"
            assert (exc.status, exc.error) == (status, error), exc.body()
            assert exc.body()["description"]
            return True
    return Check()


# ---- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.14", "2.15", "2.16", "2.17", "2.99", " 2.17 "])
def test_supported_versions(version: str) -> None:
    check_api_version(version)


@pytest.mark.parametrize("version", [None, "", "  ", "2", "2.x", "v2.17", "2.17.1"])
def test_missing_or_malformed_version_is_400(version: str | None) -> None:
    with fails(400):
        check_api_version(version)


@pytest.mark.parametrize("version", ["2.13", "2.0", "1.17", "3.0"])
def test_unsupported_versions_are_412(version: str) -> None:
    with fails(412):
        check_api_version(version)


@given(st.text(max_size=12))
def test_any_header_is_accepted_400_or_412(version: str) -> None:
    try:
        check_api_version(version)
    except BrokerError as exc:
        assert exc.status in (400, 412)


def test_originating_identity() -> None:
    value = base64.b64encode(json.dumps({"user_id": "683ea748", "extra": "x"}).encode()).decode()
    assert parse_originating_identity(f"cloudfoundry {value}") == "cloudfoundry user_id=683ea748"
    assert parse_originating_identity(None) == ""
    for bad in ("cloudfoundry", "cf !!!", "cf " + base64.b64encode(b"[1]").decode(), "a b c"):
        with fails(400):
            parse_originating_identity(bad)


# ---- provision -------------------------------------------------------------------------------


def provision(request: ProvisionRequest | None = None, accepts: bool = True, existing: Instance | None = None,
              current: Operation | None = None) -> Any:
    return decide_provision(CATALOG, "i1", request or provision_request(), accepts, existing, current,
                            "provision-2", NOW)


def test_new_provision_is_202_with_an_operation_and_records() -> None:
    decision = provision(provision_request(parameters={"persistence": "aofAlways"}))
    assert decision.status == 202 and decision.body == {"operation": "provision-2"}
    assert decision.instance.state == "provisioning" and decision.instance.bdb_name.startswith("osb-i1")
    assert decision.operation.kind == "provision" and decision.operation.state == "in progress"


def test_provision_needs_accepts_incomplete() -> None:
    with fails(422, "AsyncRequired"):
        provision(accepts=False)


@pytest.mark.parametrize("changes", [{"plan_id": "nope"}, {"service_id": "nope"},
                                     {"parameters": {"eviction_policy": "sometimes"}},
                                     {"parameters": {"replicas": 2}}])
def test_bad_provision_requests_are_400(changes: dict[str, Any]) -> None:
    with fails(400):
        provision(provision_request(**changes))


def test_maintenance_info_must_match_the_plan() -> None:
    with fails(422, "MaintenanceInfoConflict"):
        provision(provision_request(plan_id=MEDIUM, maintenance_info={"version": "1.0.0"}))
    assert provision(provision_request(plan_id=MEDIUM, maintenance_info={"version": "2.0.0"})).status == 202


def test_identical_repeat_while_in_progress_is_202_with_the_same_operation() -> None:
    decision = provision(existing=instance("provisioning"), current=operation())
    assert (decision.status, decision.body, decision.operation) == (202, {"operation": "provision-1"}, None)


def test_identical_repeat_when_done_is_200() -> None:
    decision = provision(existing=instance("provisioned"), current=operation(state="succeeded"))
    assert (decision.status, decision.body) == (200, {})
    assert provision(accepts=False, existing=instance("provisioned")).status == 200


@pytest.mark.parametrize("changes", [{"plan_id": MEDIUM}, {"parameters": {"persistence": "aofAlways"}},
                                     {"space_guid": "other"}])
def test_different_repeat_is_409(changes: dict[str, Any]) -> None:
    for state in ("provisioning", "provisioned"):
        with fails(409):
            provision(provision_request(**changes), existing=instance(state), current=operation())


def test_repeat_of_a_failed_provision_starts_again() -> None:
    decision = provision(existing=instance("failed"), current=operation(state="failed"))
    assert decision.status == 202 and decision.body == {"operation": "provision-2"}


def test_provision_while_deprovisioning_is_a_concurrency_error() -> None:
    with fails(422, "ConcurrencyError"):
        provision(existing=instance("deprovisioning"), current=operation("deprovision"))


def test_a_deleted_instance_id_can_be_provisioned_again() -> None:
    assert provision(existing=instance("deleted")).status == 202


# ---- update ----------------------------------------------------------------------------------


def update(body: dict[str, Any], accepts: bool = True, existing: Instance | None = None,
           current: Operation | None = None) -> Any:
    return decide_update(CATALOG, "i1", UpdateRequest.model_validate(body), accepts, existing, current,
                         "update-2", NOW)


def test_plan_change_is_202_and_marks_the_instance_updating() -> None:
    decision = update({"service_id": SERVICE, "plan_id": MEDIUM}, existing=instance())
    assert decision.status == 202 and decision.instance.state == "updating"
    assert decision.operation.target_plan_id == MEDIUM


def test_update_without_effect_is_200_even_without_accepts_incomplete() -> None:
    assert update({"service_id": SERVICE}, accepts=False, existing=instance()).status == 200
    assert update({"service_id": SERVICE, "plan_id": SMALL, "context": {"a": 1}}, accepts=False,
                  existing=instance()).status == 200


def test_update_parameters_merge_and_validate() -> None:
    decision = update({"service_id": SERVICE, "parameters": {"persistence": "aofAlways"}},
                      existing=instance(parameters={"eviction_policy": "noeviction"}))
    assert decision.operation.target_parameters == {"eviction_policy": "noeviction",
                                                    "persistence": "aofAlways"}
    with fails(400):
        update({"service_id": SERVICE, "parameters": {"memory": "1TB"}}, existing=instance())


def test_update_rules() -> None:
    with fails(422, "AsyncRequired"):
        update({"service_id": SERVICE, "plan_id": MEDIUM}, accepts=False, existing=instance())
    with fails(404):
        update({"service_id": SERVICE, "plan_id": MEDIUM}, existing=None)
    with fails(400):
        update({"service_id": SERVICE, "plan_id": "nope"}, existing=instance())
    with fails(400):
        update({"service_id": "nope"}, existing=instance())
    for state, kind in (("provisioning", "provision"), ("deprovisioning", "deprovision")):
        with fails(422, "ConcurrencyError"):
            update({"service_id": SERVICE, "plan_id": MEDIUM}, existing=instance(state),
                   current=operation(kind))
    with fails(422):
        update({"service_id": SERVICE, "plan_id": MEDIUM}, existing=instance("failed"))


def test_repeat_of_the_update_in_progress_is_202_another_one_422() -> None:
    running = operation("update", target_plan_id=MEDIUM, target_parameters={})
    decision = update({"service_id": SERVICE, "plan_id": MEDIUM}, existing=instance("updating"),
                      current=running)
    assert (decision.status, decision.body) == (202, {"operation": "update-1"})
    with fails(422, "ConcurrencyError"):
        update({"service_id": SERVICE, "plan_id": SMALL, "parameters": {"persistence": "aofAlways"}},
               existing=instance("updating"), current=running)


# ---- deprovision -----------------------------------------------------------------------------


def deprovision(existing: Instance | None, current: Operation | None = None, accepts: bool = True,
                service_id: str | None = SERVICE, plan_id: str | None = SMALL) -> Any:
    return decide_deprovision(CATALOG, "i1", service_id, plan_id, accepts, existing, current, "deprovision-2",
                              NOW)


def test_deprovision_rules() -> None:
    decision = deprovision(instance())
    assert decision.status == 202 and decision.instance.state == "deprovisioning"
    assert decision.operation.previous_state == "provisioned"
    assert deprovision(instance("failed")).status == 202  # orphan mitigation after a failed provision
    with fails(410):
        deprovision(None)
    with fails(410):
        deprovision(instance("deleted"))
    with fails(422, "AsyncRequired"):
        deprovision(instance(), accepts=False)
    with fails(422, "ConcurrencyError"):
        deprovision(instance("provisioning"), operation())
    for missing in ({"service_id": None}, {"plan_id": None}, {"plan_id": "nope"}):
        with fails(400):
            deprovision(instance(), **missing)  # type: ignore[arg-type]
    # a plan since removed from the catalog: its instances can still be deleted
    assert deprovision(instance(plan_id="retired-plan"), plan_id="retired-plan").status == 202
    with fails(400):
        deprovision(instance(), plan_id="retired-plan")
    repeat = deprovision(instance("deprovisioning"), operation("deprovision"))
    assert (repeat.status, repeat.body) == (202, {"operation": "deprovision-1"})


# ---- last operation, fetch ------------------------------------------------------------------


def test_last_operation() -> None:
    ops = [operation("update", "failed", description="update failed: x"), operation("provision", "succeeded")]
    decision = decide_last_operation("i1", instance(), ops, None)
    assert decision.body == {"state": "failed", "description": "update failed: x", "instance_usable": True,
                             "update_repeatable": True}
    assert decide_last_operation("i1", instance(), ops, "provision-1").body["state"] == "succeeded"
    failed_delete = [operation("deprovision", "failed", description="deprovision failed: x")]
    assert decide_last_operation("i1", instance(), failed_delete, None).body["instance_usable"] is True
    never_usable = decide_last_operation("i1", instance("failed"), failed_delete, None)
    assert never_usable.body["instance_usable"] is False
    with fails(400):
        decide_last_operation("i1", instance(), ops, "other-op")
    with fails(404):
        decide_last_operation("i1", None, [], None)
    with fails(410):
        decide_last_operation("i1", instance("deleted"), [operation("deprovision", "succeeded")], None)


def test_fetch_instance() -> None:
    decision = decide_fetch_instance("i1", instance(plan_id=MEDIUM, parameters={"persistence": "aofAlways"}),
                                     CATALOG)
    assert decision.body == {"service_id": SERVICE, "plan_id": MEDIUM,
                             "parameters": {"persistence": "aofAlways"},
                             "maintenance_info": {"version": "2.0.0"}}
    for state in ("provisioning", "failed", "deleted"):
        with fails(404):
            decide_fetch_instance("i1", instance(state), CATALOG)  # type: ignore[arg-type]
    with fails(422, "ConcurrencyError"):
        decide_fetch_instance("i1", instance("updating"), CATALOG)


# ---- bindings --------------------------------------------------------------------------------


def bind(existing_instance: Instance | None, existing: Binding | None = None, **changes: Any) -> Any:
    body: dict[str, Any] = {"service_id": SERVICE, "plan_id": SMALL, "bind_resource": {"app_guid": "app"}}
    body.update(changes)
    return decide_bind(CATALOG, "i1", "b1", BindRequest.model_validate(body), existing_instance, existing,
                       NOW, "new-password-1234")


def test_bind_rules() -> None:
    created = bind(instance())
    assert created.status == 201 and created.binding.app_guid == "app"
    # a new binding: recorded first ('creating'), with its own user and password, then granted
    assert created.grant and created.binding.state == "creating"
    assert created.binding.username == binding_user_name("i1", "b1")
    assert created.binding.password == "new-password-1234"
    assert "new-password-1234" not in repr(created.binding)
    # repeated before it was created (the first attempt failed or the broker stopped): granted again
    # with the recorded password, never a new one
    again = bind(instance(), existing=created.binding)
    assert (again.status, again.grant, again.binding) == (201, True, created.binding)
    done = created.binding.model_copy(update={"state": "created"})
    repeat = bind(instance(), existing=done)
    assert (repeat.status, repeat.grant, repeat.binding) == (200, False, None)
    with fails(409):
        bind(instance(), existing=done, bind_resource={"app_guid": "other"})
    with fails(422, "ConcurrencyError"):
        bind(instance(), existing=done.model_copy(update={"state": "deleting"}))
    with fails(404):
        bind(None)
    with fails(400):
        bind(instance(), plan_id=MEDIUM)  # not the instance's plan
    with fails(400):
        bind(instance(), parameters={"role": "admin"})
    with fails(422, "ConcurrencyError"):
        bind(instance("provisioning"))
    with fails(422):
        bind(instance("failed"))
    assert bind(instance("updating")).status == 201


def test_a_grant_is_checked_again_on_fresh_records() -> None:
    binding = bind(instance()).binding
    assert check_grantable("i1", "b1", instance(), binding) == binding
    with fails(422, "ConcurrencyError"):
        check_grantable("i1", "b1", instance(), None)  # unbound meanwhile
    with fails(422, "ConcurrencyError"):
        check_grantable("i1", "b1", instance(), binding.model_copy(update={"state": "deleting"}))
    with fails(422, "ConcurrencyError"):
        check_grantable("i1", "b1", instance("deprovisioning"), binding)
    with fails(404):
        check_grantable("i1", "b1", instance("deleted"), binding)


def test_unbind_and_fetch_binding() -> None:
    binding = bind(instance()).binding.model_copy(update={"state": "created"})
    unbind = decide_unbind(CATALOG, "i1", "b1", SERVICE, SMALL, binding)
    assert unbind.status == 200 and unbind.delete_binding and unbind.body == {}
    # its user is removed first, the record marked so a repeat or a restart finishes it
    assert unbind.binding == binding.model_copy(update={"state": "deleting"})
    # every state can be unbound (a platform cleans up a bind that failed; repeats an unbind)
    for state in ("creating", "deleting"):
        assert decide_unbind(CATALOG, "i1", "b1", SERVICE, SMALL,
                             binding.model_copy(update={"state": state})).binding is not None
    legacy = Binding(instance_id="i1", id="b1", service_id=SERVICE, plan_id=SMALL)
    assert decide_unbind(CATALOG, "i1", "b1", SERVICE, SMALL, legacy).binding is None
    with fails(410):
        decide_unbind(CATALOG, "i1", "b1", SERVICE, SMALL, None)
    with fails(400):
        decide_unbind(CATALOG, "i1", "b1", None, SMALL, binding)
    retired = binding.model_copy(update={"plan_id": "retired-plan"})
    assert decide_unbind(CATALOG, "i1", "b1", SERVICE, "retired-plan", retired).status == 200
    assert decide_fetch_binding("i1", "b1", instance(), binding).status == 200
    for gone in (None, binding.model_copy(update={"state": "creating"}),
                 binding.model_copy(update={"state": "deleting"})):
        with fails(404):
            decide_fetch_binding("i1", "b1", instance(), gone)


BDB = {"uid": 3, "name": "osb-i1", "port": 12000, "authentication_redis_pass": "db-password",
       "endpoints": [{"dns_name": "node-1.rec", "addr": ["10.0.0.1"], "port": 12000}]}
NODES = [{"uid": 2, "name": "node-2.rec", "addr": "10.0.0.2", "ports": {"sentinel": 8001}},
         {"uid": 1, "name": "node-1.rec", "addr": "10.0.0.1", "ports": {"sentinel": 8001}},
         {"uid": 3, "name": "node-3.rec", "status": "decommissioning", "ports": {"sentinel": 8001}}]
IN_KUBERNETES = ServiceNaming(domain="ns.svc.cluster.local")


def user_binding(username: str = "osb-b1-0123456789", password: str = "p@ss/word") -> Binding:  # noqa: S107
    return Binding(instance_id="i1", id="b1", service_id=SERVICE, plan_id=SMALL, username=username,
                   password=password)


def test_credentials_name_the_database_service_and_the_binding_user() -> None:
    creds = credentials_for(BDB, NODES, user_binding(), IN_KUBERNETES)
    # the Service the rigger keeps pointed at the master, never the node holding it at bind time
    assert (creds["host"], creds["port"]) == ("osb-i1.ns.svc.cluster.local", 12000)
    assert (creds["username"], creds["password"]) == ("osb-b1-0123456789", "p@ss/word")
    assert creds["uri"] == "redis://osb-b1-0123456789:p%40ss%2Fword@osb-i1.ns.svc.cluster.local:12000"
    assert "db-password" not in str(creds)
    # Sentinel beside it, for clients that follow failover themselves
    assert creds["sentinel_addresses"] == ["node-1.rec:8001", "node-2.rec:8001"]
    assert creds["sentinel_master_name"] == "osb-i1" and creds["tls"] is False
    assert "shared_password" not in creds and "note" not in creds
    shards = [{"uid": "2", "node_uid": "2", "role": "slave"}, {"uid": "1", "node_uid": "1", "role": "master"}]
    hosts = shard_hosts(shards, NODES)
    assert hosts == ["node-1.rec", "node-2.rec"]
    assert binding_endpoints(creds, hosts) == [
        {"host": "osb-i1.ns.svc.cluster.local", "ports": ["12000"], "protocol": "tcp"},
        {"host": "node-1.rec", "ports": ["12000"], "protocol": "tcp"},
        {"host": "node-2.rec", "ports": ["12000"], "protocol": "tcp"},
        {"host": "node-1.rec", "ports": ["8001"], "protocol": "tcp"},
        {"host": "node-2.rec", "ports": ["8001"], "protocol": "tcp"}]


@pytest.mark.parametrize(("services", "host"), [
    (ServiceNaming(domain="ns.svc.cluster.local"), "osb-i1.ns.svc.cluster.local"),
    (ServiceNaming(domain="ns.svc.example.org.", naming="redis-port"), "redis-12000.ns.svc.example.org"),
    (ServiceNaming(domain="ns.svc.cluster.local", types=("headless",)),
     "osb-i1-headless.ns.svc.cluster.local"),
    (ServiceNaming(domain="ns.svc.cluster.local", types=("load_balancer", "cluster_ip")),
     "osb-i1-load-balancer.ns.svc.cluster.local"),
])
def test_the_service_is_named_as_the_rigger_names_it(services: ServiceNaming, host: str) -> None:
    assert credentials_for(BDB, NODES, user_binding(), services)["host"] == host
    rigger_name = service_name("osb-i1", 12000, services.types[0], services.naming)
    assert host.startswith(rigger_name + ".")


def test_outside_kubernetes_the_master_node_is_named() -> None:
    creds = credentials_for(BDB, NODES, user_binding(), ServiceNaming())
    assert (creds["host"], creds["port"]) == ("node-1.rec", 12000)
    with fails(503):
        credentials_for({**BDB, "endpoints": []}, NODES, user_binding(), ServiceNaming())
    # in Kubernetes the Service does not need the endpoint
    assert credentials_for({**BDB, "endpoints": []}, NODES, user_binding(), IN_KUBERNETES)["host"]


def test_a_binding_made_before_bindings_had_users_keeps_the_database_password_and_says_so() -> None:
    legacy = Binding(instance_id="i1", id="b1", service_id=SERVICE, plan_id=SMALL)
    creds = credentials_for(BDB, NODES, legacy, IN_KUBERNETES)
    assert (creds["username"], creds["password"]) == ("default", "db-password")
    assert creds["uri"] == "redis://:db-password@osb-i1.ns.svc.cluster.local:12000"
    assert creds["shared_password"] is True and creds["binding_user"] is False and creds["note"]


def test_credentials_of_a_tls_database_say_tls_and_carry_the_ca_and_the_tls_sentinels() -> None:
    bdb = {"uid": 3, "name": "osb-i2", "port": 12001, "authentication_redis_pass": "pw",
           "tls_mode": "enabled",
           "endpoints": [{"dns_name": "node-1.rec", "addr": ["198.18.8.1"], "port": 12001}]}
    nodes = [{"uid": 1, "name": "node-1.rec", "addr": "198.18.8.1",
              "ports": {"sentinel": 8001, "sentinel_tls": 8002}}]
    ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
    creds = credentials_for(bdb, nodes, user_binding("u1", "pw1"), IN_KUBERNETES, ca)
    assert creds["tls"] is True and creds["uri"] == "rediss://u1:pw1@osb-i2.ns.svc.cluster.local:12001"
    assert creds["sentinel_addresses"] == ["node-1.rec:8002"]
    assert "BEGIN CERTIFICATE" in creds["ca_certificate"]
    assert "ca_certificate" not in credentials_for({**bdb, "tls_mode": "disabled"}, nodes, user_binding(),
                                                   IN_KUBERNETES)


# ---- roles_permissions ------------------------------------------------------------------------

permission = st.fixed_dictionaries({"role_uid": st.integers(1, 12), "redis_acl_uid": st.integers(1, 4)})
permissions = st.lists(permission, max_size=8, unique_by=lambda p: p["role_uid"])


@given(permissions, st.integers(1, 12), st.integers(1, 4))
def test_a_grant_adds_its_role_and_keeps_every_other_entry(current: list[dict[str, int]], role: int,
                                                           acl: int) -> None:
    changed = with_permission(current, role, acl)
    result = current if changed is None else changed
    assert {"role_uid": role, "redis_acl_uid": acl} in result
    assert [p for p in result if p["role_uid"] != role] == [p for p in current if p["role_uid"] != role]
    assert len({p["role_uid"] for p in result}) == len(result)  # one ACL per role, as the API requires
    assert (changed is None) == ({"role_uid": role, "redis_acl_uid": acl} in current)


@given(permissions, st.sets(st.integers(1, 12)))
def test_a_revoke_removes_only_its_roles(current: list[dict[str, int]], roles: set[int]) -> None:
    changed = without_permissions(current, roles)
    result = current if changed is None else changed
    assert result == [p for p in current if p["role_uid"] not in roles]
    assert (changed is None) == (not any(p["role_uid"] in roles for p in current))


@given(permissions, st.sets(st.integers(1, 12)), st.integers(1, 4))
def test_a_plan_change_moves_only_the_bindings_roles(current: list[dict[str, int]], roles: set[int],
                                                     acl: int) -> None:
    changed = repointed(current, roles, acl)
    result = current if changed is None else changed
    assert [p["role_uid"] for p in result] == [p["role_uid"] for p in current]  # none added or removed
    for before, after in zip(current, result, strict=True):
        assert after["redis_acl_uid"] == (acl if before["role_uid"] in roles else before["redis_acl_uid"])
    assert (changed is None) == (result == current)


def test_names_are_found_regardless_of_case() -> None:
    objects = [{"uid": 1, "name": "Full Access"}, {"uid": 2, "name": "Read Only"}]
    assert named(objects, "read only") == objects[1]
    assert named(objects, "Not Dangerous") is None
    assert permissions_of({"roles_permissions": [{"role_uid": "3", "redis_acl_uid": 1, "extra": 1}]}) == [
        {"role_uid": 3, "redis_acl_uid": 1}]
    assert permissions_of({}) == []
