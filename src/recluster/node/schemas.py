"""The REST API's answers as its OpenAPI document (`/v1/openapi.json`) describes them: the body of
each success and the error body with the status codes each call can give.

Documentation only: handlers keep returning the dicts of `views.py` (no filtering or re-validation
of answers at run time). The schemathesis test (tests/integration/hostile) checks real answers
against this document, and `doc()` keeps every route's list of codes next to its decorator.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recluster.http_limits import MAX_BODY_BYTES
from recluster.node.bdb_fields import (
    AofPolicy,
    BdbStatus,
    DataPersistence,
    EvictionPolicy,
    SnapshotRule,
    Switch,
    TlsMode,
)
from recluster.node.model_base import Strict


class _Answer(BaseModel):
    # clients must accept fields added later (additionalProperties: true)
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Answer):
    error_code: str = Field(description="stable code, e.g. `name_exists`, `unauthorized`")
    message: str = Field(description="names the field and the rule; never carries a secret")
    description: str
    field: str | None = Field(default=None, description="the field at fault, dotted (`cluster.name`)")


ERRORS: dict[int, str] = {
    400: "Bad input: a wrong type, a value outside its rule, an unknown field or malformed JSON. "
         "`field` names the field.",
    401: "Missing or wrong Basic credentials.",
    403: "The user's role does not allow this call.",
    404: "No such object.",
    406: "A rule of the cluster refuses it (e.g. `invalid_sharding`), or this node is not in a cluster.",
    409: "A conflict with existing state (`name_exists`, `port_unavailable`), or the object is busy.",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes.",
    503: "The cluster has no quorum or no leader right now, or this node has no state yet; nothing was "
         "changed.",
}


def doc(model: Any, *codes: int) -> dict[str, Any]:
    """Route decorator arguments: the success body `model` (documented, not enforced) and the error
    codes the route can answer with besides those of its router."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": ERRORS[code]} for code in codes}
    if model is not None:
        responses[200] = {"model": model, "description": "Success"}
    return {"response_model": None, "responses": responses}


AUTHENTICATED = doc(None, 401, 403, 406, 503)["responses"]  # every call that needs the cluster's credentials


class Empty(_Answer):
    pass


class Ready(_Answer):
    ready: bool
    reason: str


class BootstrapState(_Answer):
    state: Literal["idle", "creating_cluster", "joining_cluster", "completed", "error"]
    start_time: str | None = None
    end_time: str | None = None
    error_code: str | None = None
    error_details: dict[str, str] | None = None


class LocalNodeInfo(_Answer):
    uid: int | None
    name: str
    addr: str
    software_version: str
    cores: int
    total_memory: int


class Bootstrap(_Answer):
    bootstrap_status: BootstrapState
    local_node_info: LocalNodeInfo


class Endpoint(_Answer):
    uid: str
    dns_name: str
    addr: list[str]
    port: int


class Bdb(_Answer):
    uid: int
    name: str
    type: str
    memory_size: int
    port: int
    replication: bool
    shards_count: int
    data_persistence: DataPersistence
    aof_policy: AofPolicy
    snapshot_policy: list[SnapshotRule]
    eviction_policy: EvictionPolicy
    authentication_redis_pass: str | None = Field(
        default=None, description="absent for a caller whose role may not read it, and for a database "
        "whose default user is off")
    default_user: bool = True
    roles_permissions: list[dict[str, int]] = Field(default_factory=list)
    tls_mode: TlsMode
    enforce_client_authentication: Switch
    authentication_ssl_client_certs: list[dict[str, str]]
    ssl: bool
    status: BdbStatus
    action_uid: str
    created_time: str
    last_changed_time: str
    shard_list: list[int]
    endpoints: list[Endpoint]
    redis_version: str = Field(description="the engine asked for; during an engine upgrade, the target")
    version: str = Field(description="the engine every shard runs (the old one until an upgrade ends)")
    upgrade_from: str = Field(default="", description="while an engine upgrade runs: the version it "
                              "started from (its action, name upgrade_engine, shows the step)")
    backup: bool = Field(default=False, description="scheduled backups on (run by the cluster's leader)")
    backup_interval: int = Field(default=0, description="seconds between scheduled backups")
    backup_location_digest: str = Field(default="", description="SHA-256 of the backup_location given "
                                        "(the location holds a secret key and is never shown)")
    backup_status: str | None = Field(default=None, description="the last scheduled backup: exporting, "
                                      "succeeded or failed")
    backup_progress: int | None = None
    last_backup_time: str | None = Field(default=None, description="when the last backup succeeded")
    backup_failure_reason: str | None = Field(default=None, description="no-permission, wrong-file-path, "
                                              "general-error")
    backup_failure_message: str | None = Field(default=None, description="recluster's: the problem in a "
                                               "sentence")
    last_backup_failure_time: str | None = None
    backup_failures: int = Field(default=0, description="failures since the last success (retries wait "
                                 "1, 2, 4 ... minutes, at most the interval)")
    next_backup_time: str | None = Field(default=None, description="when the next scheduled backup runs")


class BdbDeleted(_Answer):
    uid: int
    status: Literal["delete-pending"]
    action_uid: str


class Shard(_Answer):
    uid: str
    bdb_uid: int
    node_uid: str
    role: Literal["master", "slave"]
    status: Literal["active", "inactive"]
    detailed_status: str
    node_name: str
    redis_version: str = Field(description="the engine its node starts it with")
    running_version: str = Field(description="the engine the leader last saw it run (INFO); '' not yet")


class Node(_Answer):
    uid: int
    addr: str
    name: str
    status: Literal["active", "down", "decommissioning"]
    accept_servers: bool
    shard_count: int
    shard_list: list[int]
    role: Literal["master", "slave"]
    software_version: str
    total_memory: int
    cores: int
    ports: dict[str, int]


class Action(_Answer):
    uid: str
    action_uid: str
    name: str
    object_name: str
    node_uid: int | None
    status: Literal["queued", "running", "completed", "failed"]
    progress: int
    error_code: str
    error_message: str
    creation_time: str


class Actions(_Answer):
    actions: list[Action] = Field(description="node removals")
    state_machines: list[Action] = Field(alias="state-machines", description="database changes")


class NodeActions(_Answer):
    actions: list[Action]


class Cluster(_Answer):
    name: str
    created_time: str
    nodes_count: int
    master_node: int | None
    quorum: int
    bdbs_count: int
    software_version: str
    state_version: int


class ShardFailover(_Answer):
    shard_uid: str
    bdb_uid: int
    status: Literal["failover requested"]


class Certificates(_Answer):
    proxy_cert: str = Field(description="PEM: the CA(s) a client of a TLS database trusts: the CA of the "
                            "user's certificate when one is set (PUT /v1/cluster/update_cert), and the "
                            "cluster's database CA (it signs the shards' certificates otherwise, and the "
                            "TLS sentinels'); empty until the cluster has made it")
    proxy_user_cert: str = Field(default="", description="PEM: the certificate (and intermediates) a user "
                                 "gave the databases, which every TLS shard serves; empty while the "
                                 "nodes issue the shards' certificates from the database CA")
    api_cert: str = Field(default="", description="PEM: the certificate (and intermediates) a user gave "
                          "the REST API (9443), which every node serves; empty while each serves its own")
    cm_cert: str = Field(default="", description="PEM: the user's certificate of the console (8443); empty "
                         "while each node serves its own")
    metrics_exporter_cert: str = Field(default="", description="PEM: the user's certificate of the metrics "
                                       "endpoint (8070); empty while each node serves its own")


class CertificateUpdate(Strict):
    """PUT /v1/cluster/update_cert (Redis Enterprise's body): `proxy` (the databases'), `api`,
    `cm` or `metrics_exporter` (the nodes' HTTPS servers) can be set (`syncer` keeps the cluster's
    own); `certificate` is the leaf then its intermediates (and the root CA when it is not given
    apart), PEM."""

    name: str = Field(description="which certificate: `proxy` (the databases'), `api` (the REST API, "
                      "9443), `cm` (the console, 8443), `metrics_exporter` (8070)")
    certificate: str = Field(description="PEM: the certificate, then its chain")
    key: str = Field(description="PEM: its private key, unencrypted")
    ca: str = Field(default="", description="recluster: PEM CA certificate(s) the chain ends at, when not "
                    "in `certificate` (a cert-manager Secret's ca.crt)")


class License(_Answer):
    license: str
    cluster_name: str
    expired: bool
    trial: bool
    ram_shards_in_use: int


class Policy(_Answer):
    slave_ha: bool = Field(description="a down node's replicas are re-created on other nodes")
    slave_ha_grace_period: int = Field(description="seconds a node may be down before its replicas move")


class StatsInterval(_Answer):
    interval: str
    stime: str
    etime: str


class Stats(_Answer):
    uid: str
    intervals: list[StatsInterval]


class StatsValues(_Answer):
    stime: str
    etime: str
    used_memory: float
    no_of_keys: float


class BdbFields(_Answer):
    """An item of `GET /v1/bdbs`: the whole database, or only the keys named in `fields`."""

    uid: int = 0
    name: str = ""
    memory_size: int = 0
    port: int = 0
    replication: bool = False
    status: BdbStatus = "pending"
    endpoints: list[Endpoint] = Field(default_factory=list)
