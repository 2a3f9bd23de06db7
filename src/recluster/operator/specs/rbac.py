"""ServiceAccount, Role and RoleBinding `<rec>`: the identity of the services rigger.

Least privilege (the contract's §5.2, reduced to what recluster needs): the node daemons never talk
to Kubernetes (their pods do not even mount a token), so the Role serves the rigger alone: it
creates one set of Services per database, without selector, writes their EndpointSlices (the
master's pod) and tags the pods that hold master shards; it deletes the EndpointSlices and legacy
Endpoints kube-controller-manager left from when those Services had a selector; its replicas elect a
leader with the Lease `<rec>-services-rigger` (no other Lease can it read or take). It reads its
credentials from a mounted file, so it never reads a Secret: it only patches the `service_names` key
of database secrets, whose names (and Service ports) it reads from the REDBs. It posts no events, so
it may not (tests/integration/security/test_service_account_rights.py holds each rule to the code
that uses it).
"""

from __future__ import annotations

import copy
from typing import Any

from recluster.api.common import GROUP
from recluster.api.rec import RedisEnterpriseCluster
from recluster.api.redb import PLURAL as REDB_PLURAL
from recluster.operator.specs.meta import object_meta
from recluster.operator.specs.names import rigger_name, role_name, service_account_name

REC_ROLE_RULES: list[dict[str, Any]] = [
    {  # one Service set per database: create, keep current, delete with the database
        "apiGroups": [""],
        "resources": ["services"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {  # the Services' endpoints: the master's pod (server-side apply), deleted with the database;
        # listed to find kube-controller-manager's slices left from a selector, and delete them
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["list", "create", "patch", "delete"],
    },
    {  # the legacy Endpoints kube-controller-manager left from a selector: found and deleted
        "apiGroups": [""],
        "resources": ["endpoints"],
        "verbs": ["list", "delete"],
    },
    {  # tag the pods that hold master shards (labels only: patch, no update)
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {  # keep `service_names` of each database secret true (patch only: it never reads a password)
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["patch"],
    },
    {  # which secret is a database's, its Service port, the owner of its Services
        "apiGroups": [GROUP],
        "resources": [REDB_PLURAL],
        "verbs": ["get", "list"],
    },
]


def build_service_account(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(rec, service_account_name(rec)),
    }


def lease_rules(rec: RedisEnterpriseCluster) -> list[dict[str, Any]]:
    """The rigger's leader election: its own Lease only (create cannot be limited to a name)."""
    return [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [rigger_name(rec)],
            "verbs": ["get", "update"],
        },
    ]


def build_role(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_meta(rec, role_name(rec)),
        "rules": copy.deepcopy(REC_ROLE_RULES) + lease_rules(rec),
    }


def build_role_binding(rec: RedisEnterpriseCluster) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(rec, role_name(rec)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name(rec)},
        "subjects": [
            {"kind": "ServiceAccount", "name": service_account_name(rec), "namespace": rec.namespace}
        ],
    }
