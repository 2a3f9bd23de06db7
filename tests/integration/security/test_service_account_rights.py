"""Every service account the product uses can do what its code needs and nothing else, proved by
the real apiserver's RBAC (SubjectAccessReview) on the test run's control plane.

Accounts:
- `redis-enterprise-operator`: deploy/service_account.yaml, role.yaml, role_binding.yaml, plus the
  one cluster-scoped grant of deploy/admission/role.yaml (its webhook configuration's caBundle);
- `<rec>`: the services rigger (Deployment `<rec>-services-rigger`); the node pods run under it too
  but get no token (the node daemons never call Kubernetes);
- `default`: the service broker (no serviceAccountName, no token: it reads its credentials from a
  mounted file and calls only the REST API).

The `<rec>` objects are made by the operator's pure builders (recluster.operator.specs.rbac) for a
sample REC and applied *as the operator* (impersonating its account), as it does: so this also
proves the operator holds everything it grants (Kubernetes refuses to let anyone grant more).

NEEDS lists what each account's code does (with where); DENIED lists what it must not do. A unit
check also holds every Role to NEEDS: a rule that no code uses fails it (reads of a resource the
code lists, and `update` where it patches, count as used: they give no more power).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s

from recluster.api import rec as rec_api
from recluster.api import redb as redb_api
from recluster.api.common import GROUP
from recluster.api.rec import RedisEnterpriseCluster
from recluster.local.cluster import LocalCluster
from recluster.local.harness import DEPLOY, OPERATOR_SA, kubectl, operator_namespace
from recluster.operator.specs.broker import build_broker_deployment
from recluster.operator.specs.rbac import build_role, build_role_binding, build_service_account
from recluster.operator.specs.rigger import build_rigger_deployment
from recluster.operator.specs.statefulset import build_statefulset

REC_NAME = "rec"
WEBHOOK_CONFIGURATION = "redis-enterprise-admission"
OWN = "<own>"  # the test's namespace: where the operator and the REC live
CLUSTER = ""  # cluster-scoped
OTHERS = ("kube-system", "default")


@dataclass(frozen=True)
class Need:
    group: str
    resource: str  # "pods", "redisenterpriseclusters/status"
    verbs: tuple[str, ...]
    why: str
    namespace: str = OWN
    name: str = ""


@dataclass(frozen=True)
class Denied:
    verb: str
    group: str
    resource: str
    why: str
    namespace: str = OWN
    name: str = ""


RECS, REDBS = rec_api.PLURAL, redb_api.PLURAL
APP = GROUP

# ---- what each account's code does ---------------------------------------------------------------

OPERATOR_NEEDS = [
    Need(APP, RECS, ("get",), "rec/reconcile.py reads the REC afresh; redb/cluster.py finds it"),
    Need(APP, RECS, ("list", "watch"), "kopf watches RECs (rec/handlers.py); redb/cluster.py lists them"),
    Need(APP, RECS, ("patch",), "the contract finalizer (finalizers.py), the accepted-spec "
                                "annotation, clusterRecovery reset (rec/steps.py)"),
    Need(APP, f"{RECS}/status", ("patch",), "status.py write_status"),
    Need(APP, f"{RECS}/finalizers", ("update",), "ownerReferences with blockOwnerDeletion "
                                                  "(OwnerReferencesPermissionEnforcement)"),
    Need(APP, REDBS, ("get",), "redb/reconcile.py reads the REDB afresh"),
    Need(APP, REDBS, ("list", "watch", "patch"), "kopf watches REDBs (redb/handlers.py); the finalizer"),
    Need(APP, f"{REDBS}/status", ("patch",), "status.py write_status (REDB)"),
    Need(APP, f"{REDBS}/finalizers", ("update",), "owner references of the database secret"),
    Need("", "secrets", ("get",), "the credentials, TLS and license secrets and database secrets, by name"),
    Need("", "secrets", ("create", "patch"),
         "server-side apply of `rec`, `rec-tls`, `redb-<db>`, the broker's `rec-service-broker(-tls)`"),
    Need("", "secrets", ("delete",), "a database secret it made goes with its REDB"),
    Need("", "configmaps", ("create", "patch"),
         "server-side apply of ConfigMap `<rec>-database-ca` (rec/user_certificates.py)"),
    Need("", "services", ("list", "watch"), "kopf watches the REC's Services (rec/handlers.py)"),
    Need("", "services", ("create", "patch"), "server-side apply of the REC's Services"),
    Need("", "services", ("get", "delete"), "the broker Service when the broker is disabled"),
    Need("", "pods", ("list", "watch"), "observes node pods (rec/reconcile.py, kopf)"),
    Need("", "pods", ("delete",), "rolling restarts, recovery, teardown (rec/steps.py, rec/delete.py)"),
    Need("", "serviceaccounts", ("create", "patch"), "server-side apply of ServiceAccount `rec`"),
    Need("", "persistentvolumeclaims", ("create", "patch"), "server-side apply of the broker's PVC"),
    Need("", "persistentvolumeclaims", ("list", "patch"), "node claims grown (rec/volumes.py)"),
    Need("", "events", ("create",), "StatusChange / InvalidConfiguration events, kopf's own"),
    Need("apps", "statefulsets", ("get", "list", "watch", "create", "patch", "delete"),
         "the node StatefulSet: observe, apply, orphan-delete to change immutable fields"),
    Need("apps", "deployments", ("get", "list", "watch", "create", "patch", "delete"),
         "rigger and broker Deployments: apply, watch, delete the broker's"),
    Need("policy", "poddisruptionbudgets", ("create", "patch"), "server-side apply of the PDB"),
    Need("rbac.authorization.k8s.io", "roles", ("create", "patch"), "server-side apply of Role `rec`"),
    Need("rbac.authorization.k8s.io", "rolebindings", ("create", "patch"), "and its RoleBinding"),
    Need("coordination.k8s.io", "leases", ("get", "create", "update"), "leader election (lease.py)"),
    Need("admissionregistration.k8s.io", "validatingwebhookconfigurations", ("get", "patch"),
         "publishes its CA in the caBundle (webhook.py)", CLUSTER, WEBHOOK_CONFIGURATION),
]

RIGGER_NEEDS = [
    Need("", "services", ("list",), "rigger/observe.py own_services"),
    Need("", "services", ("create", "patch"), "server-side apply of a database's Services"),
    Need("", "services", ("delete",), "the Services of a deleted database"),
    Need("discovery.k8s.io", "endpointslices", ("create", "patch"),
         "server-side apply of its selector-less Services' EndpointSlices (rigger/writer.py apply_slices)"),
    Need("discovery.k8s.io", "endpointslices", ("list",),
         "rigger/observe.py service_slices: its own and kcm's"),
    Need("discovery.k8s.io", "endpointslices", ("delete",),
         "slices of a deleted database; kcm's left from a selector (remove_leftovers)"),
    Need("", "endpoints", ("list", "delete"), "kcm's Endpoints left from a selector (remove_leftovers)"),
    Need("", "pods", ("list",), "rigger/observe.py node_pods"),
    Need("", "pods", ("patch",), "master labels on node pods (merge patch of labels)"),
    Need("", "secrets", ("patch",), "service_names of database secrets (never reads them)"),
    Need(APP, REDBS, ("list",), "which secret and Service port belong to a database"),
    Need("coordination.k8s.io", "leases", ("create",), "its replicas' Lease, the first time (leadership.py)"),
    Need("coordination.k8s.io", "leases", ("get", "update"), "take and renew it",
         name=f"{REC_NAME}-services-rigger"),
]

# ---- what they must not do -----------------------------------------------------------------------


def _everyone_denied() -> list[Denied]:
    """Out of bounds for every account of the product."""
    rows = [
        Denied("list", "", "nodes", "cluster-scoped: nothing of ours looks at nodes", CLUSTER),
        Denied("get", "", "nodes", "cluster-scoped", CLUSTER),
        Denied("list", "", "namespaces", "namespaced product: no namespace scanning", CLUSTER),
        Denied("create", "", "namespaces", "cluster-scoped", CLUSTER),
        Denied("delete", "", "namespaces", "cluster-scoped", CLUSTER),
        Denied("list", "", "persistentvolumes", "volumes are the provisioner's", CLUSTER),
        Denied("create", "rbac.authorization.k8s.io", "clusterroles", "cluster-wide RBAC", CLUSTER),
        Denied("escalate", "rbac.authorization.k8s.io", "clusterroles", "no RBAC escalation", CLUSTER),
        Denied("bind", "rbac.authorization.k8s.io", "clusterroles", "no binding of cluster roles", CLUSTER),
        Denied("create", "rbac.authorization.k8s.io", "clusterrolebindings", "cluster-wide RBAC", CLUSTER),
        Denied("create", "apiextensions.k8s.io", "customresourcedefinitions", "CRDs are installed", CLUSTER),
        Denied("update", "apiextensions.k8s.io", "customresourcedefinitions", "CRDs are installed", CLUSTER),
        Denied("delete", "apiextensions.k8s.io", "customresourcedefinitions", "CRDs are installed", CLUSTER),
        Denied("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations",
               "no admission control", CLUSTER),
        Denied("impersonate", "", "users", "no impersonation", CLUSTER),
        Denied("impersonate", "", "groups", "no impersonation", CLUSTER),
        Denied("impersonate", "", "serviceaccounts", "no impersonation"),
        Denied("impersonate", "authentication.k8s.io", "userextras", "no impersonation", CLUSTER),
        Denied("escalate", "rbac.authorization.k8s.io", "roles", "no RBAC escalation"),
        Denied("bind", "rbac.authorization.k8s.io", "roles", "grants only what it holds"),
        Denied("bind", "rbac.authorization.k8s.io", "clusterroles", "no binding of cluster roles"),
        Denied("create", "", "pods/exec", "never runs commands in pods"),
        Denied("get", "", "pods/exec", "never runs commands in pods (websocket exec is a GET)"),
        Denied("create", "", "pods/attach", "never attaches to pods"),
        Denied("create", "", "pods/portforward", "never port-forwards"),
        Denied("patch", "", "pods/ephemeralcontainers", "never injects containers"),
        Denied("create", "", "serviceaccounts/token", "cannot mint tokens (e.g. for `rec`)"),
        Denied("create", "", "pods", "pods come from StatefulSets and Deployments"),
        Denied("get", "", "configmaps", "reads no ConfigMap (writes `<rec>-database-ca` by apply only)"),
        Denied("*", "", "secrets", "no wildcard grants"),
        Denied("deletecollection", "", "secrets", "deletes one secret at a time, if any"),
    ]
    for namespace in OTHERS:
        rows += [
            Denied("get", "", "secrets", "other namespaces' secrets", namespace),
            Denied("list", "", "pods", "other namespaces", namespace),
            Denied("patch", "", "services", "other namespaces", namespace),
            Denied("get", APP, RECS, "RECs of other namespaces (one operator per namespace)", namespace),
        ]
    return rows


OPERATOR_DENIED = [
    *_everyone_denied(),
    Denied("list", "", "secrets", "reads secrets by name only: a list hands over every secret"),
    Denied("watch", "", "secrets", "reads secrets by name only"),
    Denied("delete", "", "persistentvolumeclaims", "node volumes stay after the REC (retention)"),
    Denied("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations",
           "only its own webhook configuration", CLUSTER, "someone-elses-webhook"),
    Denied("list", "admissionregistration.k8s.io", "validatingwebhookconfigurations",
           "only its own, by name", CLUSTER),
    Denied("delete", "admissionregistration.k8s.io", "validatingwebhookconfigurations",
           "keeps the caBundle current, never removes the configuration", CLUSTER, WEBHOOK_CONFIGURATION),
    Denied("delete", "coordination.k8s.io", "leases", "releases its Lease by update"),
    Denied("delete", "rbac.authorization.k8s.io", "roles", "Role `rec` goes with the REC (GC)"),
    Denied("deletecollection", "discovery.k8s.io", "endpointslices", "deletes one slice at a time"),
]

RIGGER_DENIED = [
    *_everyone_denied(),
    Denied("get", "", "secrets", "patches service_names only: it never reads a password"),
    Denied("list", "", "secrets", "never reads a secret"),
    Denied("watch", "", "secrets", "never reads a secret"),
    Denied("create", "", "secrets", "database secrets are the operator's"),
    Denied("delete", "", "secrets", "database secrets are the operator's"),
    Denied("delete", "", "pods", "restarts are the operator's"),
    Denied("update", "", "pods", "labels only, by patch"),
    Denied("patch", "apps", "statefulsets", "cannot resize or change the cluster"),
    Denied("patch", "apps", "deployments", "cannot change itself or the broker"),
    Denied("get", APP, RECS, "knows the cluster through its REST API only"),
    Denied("patch", APP, RECS, "the REC is the user's and the operator's"),
    Denied("patch", APP, REDBS, "REDBs are the operator's"),
    Denied("patch", APP, f"{REDBS}/status", "REDB status is the operator's"),
    Denied("create", "rbac.authorization.k8s.io", "roles", "no RBAC"),
    Denied("update", "coordination.k8s.io", "leases", "only its own Lease: never the operator's",
           name="redis-enterprise-operator"),
    Denied("get", "coordination.k8s.io", "leases", "only its own Lease", name="redis-enterprise-operator"),
    Denied("create", "", "events", "it posts no events"),
    Denied("get", "", "endpoints", "finds leftovers by list, never reads one by name"),
    Denied("create", "", "endpoints", "writes EndpointSlices, never the legacy Endpoints"),
    Denied("update", "discovery.k8s.io", "endpointslices", "server-side apply only"),
    Denied("list", "discovery.k8s.io", "endpointslices", "other namespaces' endpoints", "kube-system"),
    Denied("create", "", "serviceaccounts", "no identities"),
]

BROKER_DENIED = [
    *_everyone_denied(),
    Denied("get", "", "secrets", "reads the REST API credentials from a mounted file"),
    Denied("list", "", "secrets", "no secrets through the API"),
    Denied("list", "", "services", "talks to the REST API only"),
    Denied("list", "", "pods", "talks to the REST API only"),
    Denied("list", APP, REDBS, "talks to the REST API only"),
    Denied("get", APP, RECS, "talks to the REST API only"),
    Denied("create", "", "events", "posts no events"),
]

# ---- the objects under test ---------------------------------------------------------------------


def _sample_rec(namespace: str) -> RedisEnterpriseCluster:
    return RedisEnterpriseCluster.model_validate({  # apiVersion and kind: the model's defaults
        "metadata": {"name": REC_NAME, "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": {"nodes": 3, "serviceBrokerSpec": {"enabled": True}},
    })


def _rec_rbac_objects(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding `rec` from the builders. Their owner reference names a
    REC that does not exist here, so it is left out (the garbage collector would delete them)."""
    rec = _sample_rec(namespace)
    objects = [build_service_account(rec), build_role(rec), build_role_binding(rec)]
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)
    return objects


def _admission_objects(namespace: str) -> list[dict[str, Any]]:
    """deploy/admission/role.yaml for this namespace, under names of its own (the objects are
    cluster-scoped: another test may hold the shipped names)."""
    text = (DEPLOY / "admission" / "role.yaml").read_text().replace("OPERATOR_NAMESPACE", namespace)
    objects = [o for o in yaml.safe_load_all(text) if o]
    unique = f"recluster-security-{namespace}"
    for obj in objects:
        obj["metadata"]["name"] = unique
        if obj["kind"] == "ClusterRoleBinding":
            obj["roleRef"]["name"] = unique
    return objects


def _as_operator(cluster: LocalCluster, namespace: str, objects: list[dict[str, Any]],
                 check: bool = True) -> Any:
    return kubectl(cluster, f"--as=system:serviceaccount:{namespace}:{OPERATOR_SA}", "-n", namespace,
                   "apply", "--server-side", "--field-manager=redis-enterprise-operator", "-f", "-",
                   input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), check=check)


@pytest.fixture(scope="module")
def namespace(control_plane: LocalCluster) -> Iterator[str]:
    with operator_namespace(control_plane) as name:
        admission = _admission_objects(name)
        kubectl(control_plane, "apply", "-f", "-",
                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": admission}))
        try:
            # as the operator does it: it can grant Role `rec` only if it holds all of it
            _as_operator(control_plane, name, _rec_rbac_objects(name))
            yield name
        finally:
            for obj in admission:
                kubectl(control_plane, "delete", obj["kind"].lower(), obj["metadata"]["name"],
                        "--ignore-not-found", "--wait=false", check=False)


def _subject(namespace: str, account: str) -> tuple[str, list[str]]:
    """The user and groups the apiserver gives a service account's token."""
    return (f"system:serviceaccount:{namespace}:{account}",
            ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"])


async def _allowed(api: k8s.ApiClient, namespace: str, account: str, verb: str, group: str,
                   resource: str, where: str, name: str = "") -> bool:
    user, groups = _subject(namespace, account)
    resource, _, subresource = resource.partition("/")
    review = k8s.V1SubjectAccessReview(spec=k8s.V1SubjectAccessReviewSpec(
        user=user, groups=groups,
        resource_attributes=k8s.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, subresource=subresource or None,
            namespace=(namespace if where == OWN else where) or None, name=name or None)))
    result = await k8s.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(result.status.allowed)


async def _wait_for_rbac(api: k8s.ApiClient, namespace: str) -> None:
    """The authorizer sees new bindings through its informers: wait until both Roles count."""
    deadline = time.monotonic() + 30
    while not (await _allowed(api, namespace, REC_NAME, "patch", "", "secrets", OWN)
               and await _allowed(api, namespace, OPERATOR_SA, "patch", "admissionregistration.k8s.io",
                                  "validatingwebhookconfigurations", CLUSTER, WEBHOOK_CONFIGURATION)):
        assert time.monotonic() < deadline, "the RBAC objects never took effect"
        await asyncio.sleep(0.2)


ACCOUNTS = {
    # account: (service account, needs, denied)
    "operator": (OPERATOR_SA, OPERATOR_NEEDS, OPERATOR_DENIED),
    "rigger": (REC_NAME, RIGGER_NEEDS, RIGGER_DENIED),
    "broker": ("default", [], BROKER_DENIED),
}


@pytest.mark.integration
@pytest.mark.parametrize("account", list(ACCOUNTS))
async def test_account_can_do_what_it_needs_and_nothing_else(api: k8s.ApiClient, namespace: str,
                                                           account: str) -> None:
    service_account, needs, denied = ACCOUNTS[account]
    await _wait_for_rbac(api, namespace)
    wrong = []
    checked = 0
    for need in needs:
        for verb in need.verbs:
            checked += 1
            if not await _allowed(api, namespace, service_account, verb, need.group, need.resource,
                                  need.namespace, need.name):
                wrong.append(f"cannot {verb} {need.group}/{need.resource} ({need.namespace or 'cluster'}"
                             f"{'/' + need.name if need.name else ''}) but needs it: {need.why}")
    for row in denied:
        checked += 1
        if await _allowed(api, namespace, service_account, row.verb, row.group, row.resource,
                          row.namespace, row.name):
            wrong.append(f"may {row.verb} {row.group}/{row.resource} ({row.namespace or 'cluster'}"
                         f"{'/' + row.name if row.name else ''}), must not: {row.why}")
    assert checked >= len(denied) >= 30
    assert not wrong, f"{account} ({service_account}):\n" + "\n".join(wrong)


@pytest.mark.integration
def test_the_operator_cannot_grant_what_it_does_not_hold(control_plane: LocalCluster, namespace: str) -> None:
    """RBAC's escalation check, seen from the operator's account: a Role with one rule more than it
    holds (listing secrets) is refused."""
    greedy = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
              "metadata": {"name": "greedy", "namespace": namespace},
              "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}
    result = _as_operator(control_plane, namespace, [greedy], check=False)
    assert result.returncode != 0 and "forbidden" in result.stderr.lower(), result.stderr


@pytest.mark.unit
def test_pods_get_a_token_only_where_the_code_calls_kubernetes() -> None:
    """The node pods (REST API, CCS, shards) never call Kubernetes and the broker calls only the
    REST API: neither mounts a token. The rigger does, under `rec`."""
    rec = _sample_rec("ns")
    nodes = build_statefulset(rec, image="i")["spec"]["template"]["spec"]
    rigger = build_rigger_deployment(rec, image="i")["spec"]["template"]["spec"]
    broker = build_broker_deployment(rec, image="i")["spec"]["template"]["spec"]
    assert nodes["serviceAccountName"] == REC_NAME and nodes["automountServiceAccountToken"] is False
    assert broker.get("serviceAccountName") in (None, "default")
    assert broker["automountServiceAccountToken"] is False
    assert rigger["serviceAccountName"] == REC_NAME and rigger["automountServiceAccountToken"] is True


# ---- no rule beyond the needs (pure) -------------------------------------------------------------

READS = {"get", "list", "watch"}


def _granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(group, resource, verb, name)
            for rule in rules for group in rule.get("apiGroups", [""]) for resource in rule["resources"]
            for verb in rule["verbs"] for name in (rule.get("resourceNames") or [""])}


def _justified(grant: tuple[str, str, str, str], needed: set[tuple[str, str, str, str]]) -> bool:
    """Needed, or no more power than something needed: another read of a resource it reads (a list
    returns what get returns; status is part of the object), `update` of what it patches."""
    group, resource, verb, name = grant
    if grant in needed:
        return True
    parent = resource.split("/")[0]
    if verb in READS:
        return any(g == group and r.split("/")[0] == parent and v in READS and n in ("", name)
                   for g, r, v, n in needed)
    return verb == "update" and (group, resource, "patch", name) in needed


def _needed(needs: list[Need]) -> set[tuple[str, str, str, str]]:
    return {(n.group, n.resource, verb, n.name) for n in needs for verb in n.verbs}


def _unused(rules: list[dict[str, Any]], needed: set[tuple[str, str, str, str]]) -> list[str]:
    return sorted(f"{verb} {group}/{resource}{'/' + name if name else ''}"
                  for group, resource, verb, name in _granted(rules)
                  if not _justified((group, resource, verb, name), needed))


@pytest.mark.unit
def test_role_rec_grants_only_what_the_rigger_uses() -> None:
    unused = _unused(build_role(_sample_rec("ns"))["rules"], _needed(RIGGER_NEEDS))
    assert not unused, "Role `rec` grants what no code of the rigger uses:\n" + "\n".join(unused)


@pytest.mark.unit
def test_operator_roles_grant_only_what_the_operator_uses_or_grants() -> None:
    """The operator's needs plus everything in Role `rec` (it must hold what it grants)."""
    role = yaml.safe_load((DEPLOY / "role.yaml").read_text())
    admission = [o for o in yaml.safe_load_all((DEPLOY / "admission" / "role.yaml").read_text())
                 if o and o["kind"] == "ClusterRole"]
    needed = _needed(OPERATOR_NEEDS) | _granted(build_role(_sample_rec("ns"))["rules"])
    rules = role["rules"] + [rule for cluster_role in admission for rule in cluster_role["rules"]]
    unused = _unused(rules, needed)
    assert not unused, "the operator's Roles grant what it neither uses nor grants:\n" + "\n".join(unused)

