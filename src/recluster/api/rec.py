"""RedisEnterpriseCluster: spec and status models (the compatible core of the public contract, §7.1)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recluster.api.common import (
    GROUP,
    ApiModel,
    Condition,
    ImageSpec,
    K8sObject,
    LocalObjectReference,
    ObjectMeta,
    OpenApiModel,
    Quantity,
    ResourceRequirements,
    ServiceType,
    SpecStatus,
)
from recluster.api.managed_access import ManagedAccess
from recluster.api.quantity import quantity_bytes

KIND = "RedisEnterpriseCluster"
VERSION = "v1"  # the stored version, the one the operator reads and writes
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "redisenterpriseclusters"
SINGULAR = "redisenterprisecluster"
SHORT_NAME = "rec"
FINALIZER = f"redbfinalizer.{PLURAL}.{GROUP}"

DEFAULT_USERNAME = "demo@redis.com"
# The contract's defaults: 2 CPU / 4Gi for a node, 0.5 CPU / 0.5 GB for the rigger, limits == requests
# so the pods get the Guaranteed QoS class and are the last to be evicted.
DEFAULT_NODE_RESOURCES: dict[str, dict[str, str]] = {
    "limits": {"cpu": "2", "memory": "4Gi"},
    "requests": {"cpu": "2", "memory": "4Gi"},
}
DEFAULT_RIGGER_RESOURCES: dict[str, dict[str, str]] = {
    "limits": {"cpu": "500m", "memory": "512Mi"},
    "requests": {"cpu": "500m", "memory": "512Mi"},
}
# The persistent volume of a node defaults to five times its memory (room for AOF rewrites and snapshots).
VOLUME_SIZE_PER_MEMORY = 5
# A node lost without notice (a crash, a partition) has its replicas re-created elsewhere after this
# long: a master without a replica cannot confirm a write (WAIT), so short, like Sentinel's
# down-after. Redis Enterprise waits 1800 s on Kubernetes (a pod usually comes back with its volume)
# and copies no data for a restart; here a node that announced a planned restart (SIGTERM: a
# rolling change, a deleted pod, a drain) is waited for at least DEFAULT_RESTART_GRACE_S, so a
# rolling restart does not copy every replica (docs/node-daemon.md, "Replica grace").
DEFAULT_SLAVE_HA_GRACE_PERIOD_S = 2
DEFAULT_RESTART_GRACE_S = 60
MAX_SLAVE_HA_GRACE_PERIOD_S = 31_536_000  # a year
DATABASE_SERVICE_TYPE_PATTERN = (
    r"^(cluster_ip|headless|load_balancer)(,(cluster_ip|headless|load_balancer))*$"
)


class ClusterState(StrEnum):
    PENDING_CREATION = "PendingCreation"
    BOOTSTRAPPING_FIRST_POD = "BootstrappingFirstPod"
    INITIALIZING = "Initializing"
    RUNNING = "Running"
    RUNNING_ROLLING_UPDATE = "RunningRollingUpdate"
    UPGRADE = "Upgrade"
    RECOVERY_RESET = "RecoveryReset"
    RECOVERING_FIRST_POD = "RecoveringFirstPod"
    CLUSTER_RECREATING = "ClusterRecreating"
    DELETING = "Deleting"
    INVALID_UPGRADE = "InvalidUpgrade"
    INVALID = "Invalid"
    ERROR = "Error"


class PersistentSpec(ApiModel):
    enabled: bool = Field(default=True, description="Give every node a PersistentVolumeClaim.")
    storage_class_name: str | None = Field(
        default=None,
        description="StorageClass of the node volumes (the default class when empty). Immutable.",
    )
    volume_size: Quantity | None = Field(
        default=None,
        description="Size of each node volume; defaults to 5x the node memory. It can only grow.",
    )
    enable_persistent_volume_resize: bool = Field(
        default=False, description="Allow volumeSize to grow; the operator then expands the existing claims."
    )


class ServicesRiggerSpec(OpenApiModel):
    database_service_type: str = Field(
        default="cluster_ip,headless",
        pattern=DATABASE_SERVICE_TYPE_PATTERN,
        description="Comma list of the Services made per database: cluster_ip, headless, load_balancer.",
    )
    service_naming: Literal["bdb_name", "redis-port"] = Field(
        default="bdb_name", description="Name a database's Services after the database, or redis-<port>."
    )
    database_service_port_policy: Literal["DatabasePortForward", "RedisDefaultPort"] | None = None
    extra_env_vars: list[K8sObject] | None = None
    pod_annotations: dict[str, str] | None = None


class ServiceBrokerPersistentSpec(ApiModel):
    storage_class_name: str | None = None
    volume_size: Quantity | None = None


class ServiceBrokerSpec(ApiModel):
    enabled: bool = Field(description="Deploy the Open Service Broker for this cluster.")
    persistent_spec: ServiceBrokerPersistentSpec | None = None
    image_spec: ImageSpec | None = None
    resources: ResourceRequirements | None = None


class SlaveHaSpec(OpenApiModel):
    """Replica high availability: when a node stays down, its replicas are re-created on other nodes."""

    slave_ha_grace_period: int | None = Field(
        default=None,
        alias="slaveHAGracePeriod",
        ge=0,
        le=MAX_SLAVE_HA_GRACE_PERIOD_S,
        description=(
            "Seconds a node lost without notice may be down before its replicas are re-created on "
            f"other nodes; default {DEFAULT_SLAVE_HA_GRACE_PERIOD_S} (Redis Enterprise: 1800). A node "
            f"that announced a planned restart is waited for at least {DEFAULT_RESTART_GRACE_S} s."
        ),
    )


_SHAPES = ("keys `certificate` and `key` (Redis Enterprise's shape; `name` optional), or `tls.crt`, "
           "`tls.key` and `ca.crt` (kubernetes.io/tls, cert-manager)")
_SERVER_NOTE = ("Served to every client but the cluster's own (those naming a name of the nodes' own "
                "certificate: pods, the REC's Services), which keep the operator's certificate. A changed "
                "Secret is served to new connections without a restart; removing the field goes back to "
                "the operator's certificate.")


class CertificatesSpec(OpenApiModel):
    """Certificates a user brings (Secrets in the REC's namespace): the databases', the REST API's, the
    console's and the metrics endpoint's. The other keys of the contract are refused by name
    (api/support.py)."""

    proxy_certificate_secret_name: str | None = Field(
        default=None, min_length=1,
        description="Secret with the certificate every TLS database serves: keys `certificate` and `key` "
        "(Redis Enterprise's shape; `name: proxy` optional), or `tls.crt`, `tls.key` and `ca.crt` "
        "(kubernetes.io/tls, cert-manager). Changes are rolled out to running databases; removing the "
        "field goes back to the cluster's own CA.")
    api_certificate_secret_name: str | None = Field(
        default=None, min_length=1,
        description=f"Secret with the certificate of the REST API (9443): {_SHAPES}. "
        f"{_SERVER_NOTE}")
    cm_certificate_secret_name: str | None = Field(
        default=None, min_length=1,
        description=f"Secret with the certificate of the web console (8443): {_SHAPES}. "
        f"{_SERVER_NOTE}")
    metrics_exporter_certificate_secret_name: str | None = Field(
        default=None, min_length=1,
        description=f"Secret with the certificate of the metrics endpoint (8070): {_SHAPES}. "
        f"{_SERVER_NOTE}")


class UpgradeSpec(OpenApiModel):
    auto_upgrade_redis_enterprise: bool = False


class RedisEnterpriseClusterSpec(OpenApiModel):
    """The REC spec. Unknown keys are kept: manifests written for the original operator apply unchanged,
    and recluster.api.support says which fields are acted on, warned about or refused."""

    nodes: int = Field(default=3, description="Number of cluster nodes (pods). Odd, at least 3.")
    redis_enterprise_node_resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the node container; default 2 CPU / 4Gi, limits == requests."
    )
    persistent_spec: PersistentSpec | None = None
    redis_enterprise_image_spec: ImageSpec | None = None
    redis_enterprise_services_rigger_image_spec: ImageSpec | None = None
    redis_enterprise_services_rigger_resources: ResourceRequirements | None = None
    bootstrapper_image_spec: ImageSpec | None = Field(
        default=None, description="Accepted for compatibility; recluster nodes bootstrap themselves."
    )
    bootstrapper_resources: ResourceRequirements | None = Field(
        default=None, description="Accepted for compatibility; recluster runs no bootstrapper sidecar."
    )
    pull_secrets: list[LocalObjectReference] | None = None
    ui_service_type: ServiceType = ServiceType.CLUSTER_IP
    ui_annotations: dict[str, str] | None = None
    services_rigger_spec: ServicesRiggerSpec | None = None
    username: str = Field(
        default=DEFAULT_USERNAME, description="Cluster admin user, written to the REC secret."
    )
    license: str | None = Field(
        default=None, repr=False, description="License key; exclusive with licenseSecretName."
    )
    license_secret_name: str | None = Field(
        default=None, description="Secret whose key `license` holds the license."
    )
    cluster_credential_secret_name: str | None = Field(
        default=None, description="Secret with username/password; defaults to the REC name."
    )
    service_account_name: str | None = Field(default=None, description="Defaults to the REC name.")
    create_service_account: bool = True
    extra_labels: dict[str, str] | None = Field(
        default=None, description="Labels added to every object made."
    )
    pod_annotations: dict[str, str] | None = None
    node_selector: dict[str, str] | None = None
    pod_anti_affinity: K8sObject | None = Field(
        default=None, description="Replaces the default anti-affinity (one node pod per host)."
    )
    anti_affinity_additional_topology_keys: list[str] | None = None
    rack_awareness_node_label: str | None = None
    pod_tolerations: list[K8sObject] | None = None
    priority_class_name: str | None = None
    side_containers_spec: list[K8sObject] | None = None
    extra_env_vars: list[K8sObject] | None = None
    enforce_ipv4: bool | None = Field(default=None, alias="enforceIPv4")
    upgrade_spec: UpgradeSpec | None = None
    cluster_recovery: bool | None = Field(
        default=None, description="Set to true to recover a cluster that lost its quorum; cleared when done."
    )
    redis_enterprise_termination_grace_period_seconds: int | None = Field(
        default=None, ge=0, description="Grace period of node pods, time to hand over their master shards."
    )
    service_broker_spec: ServiceBrokerSpec | None = None
    certificates: CertificatesSpec | None = None
    slave_ha: SlaveHaSpec | None = Field(default=None, alias="slaveHA")
    managed: ManagedAccess | None = Field(
        default=None, description="recluster: users, roles and Redis ACLs kept in the cluster by the "
        "operator (passwords from Secrets); see docs/users.md.")

    def slave_ha_grace_period_s(self) -> int:
        grace = self.slave_ha.slave_ha_grace_period if self.slave_ha else None
        return DEFAULT_SLAVE_HA_GRACE_PERIOD_S if grace is None else grace

    @property
    def persistence_enabled(self) -> bool:
        return self.persistent_spec is not None and self.persistent_spec.enabled

    def node_resources(self) -> dict[str, Any]:
        if self.redis_enterprise_node_resources is None:
            return {key: dict(value) for key, value in DEFAULT_NODE_RESOURCES.items()}
        return self.redis_enterprise_node_resources.manifest()

    def node_memory_bytes(self) -> int:
        """Memory of a node: its limit, else its request, else the default."""
        resources = self.node_resources()
        for key in ("limits", "requests"):
            memory = (resources.get(key) or {}).get("memory")
            if memory is not None:
                return quantity_bytes(memory)
        return quantity_bytes(DEFAULT_NODE_RESOURCES["limits"]["memory"])

    def volume_size_bytes(self) -> int:
        """The node volume size in effect: the explicit one, else 5x the node memory."""
        if self.persistent_spec is not None and self.persistent_spec.volume_size is not None:
            return quantity_bytes(self.persistent_spec.volume_size)
        return VOLUME_SIZE_PER_MEMORY * self.node_memory_bytes()


class BundledDatabaseVersion(OpenApiModel):
    db_type: str = Field(description="redis or valkey.")
    version: str = Field(description="major.minor.")
    is_default: bool = Field(default=False, description="What a REDB without redisVersion gets.")


class RedisEnterpriseClusterStatus(OpenApiModel):
    """Status. Unknown keys are kept: kopf stores its handlers' results under status."""

    state: ClusterState | None = None
    spec_status: SpecStatus | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    ready_nodes: int | None = Field(
        default=None, description="Nodes that are ready and members of the cluster."
    )
    version: str | None = Field(default=None, description="Version running on the nodes.")
    license_status: K8sObject | None = None
    modules: list[K8sObject] | None = None
    certificates_status: K8sObject | None = Field(
        default=None, description="recluster: `proxy`, the databases' certificate: `source` (cluster: "
        "issued from the cluster's CA; secret: certificates.proxyCertificateSecretName), `secretName`, "
        "`notAfter` (its expiry), `fingerprint`, `caNotAfter` (when the first CA of what clients trust "
        "expires), and `message` when the Secret cannot be served; `api`, `cm`, `metricsExporter`, the "
        "REST API's, console's and metrics endpoint's: `source` (cluster: the operator's certificate; "
        "secret: certificates.<name>CertificateSecretName), `secretName`, `notAfter`, `fingerprint`, "
        "`message`.")
    bundled_database_versions: list[BundledDatabaseVersion] | None = Field(
        default=None, description="The database engines the cluster runs (a REDB's redisVersion names "
        "one: major.minor for Redis, valkey-major.minor for Valkey); isDefault: what a REDB without "
        "redisVersion gets."
    )


class RedisEnterpriseCluster(BaseModel):
    """A whole REC object as read from the apiserver."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta
    spec: RedisEnterpriseClusterSpec = Field(default_factory=RedisEnterpriseClusterSpec)
    status: RedisEnterpriseClusterStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def credentials_secret_name(self) -> str:
        """The Secret with the cluster's `username` and `password` (the REC's name by default)."""
        return self.spec.cluster_credential_secret_name or self.name

    @property
    def tls_secret_name(self) -> str:
        """The Secret with the cluster's CA (`ca.crt`) and the nodes' certificate."""
        return f"{self.name}-tls"
