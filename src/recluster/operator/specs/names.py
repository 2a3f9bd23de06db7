"""Names and labels of everything a REC owns, in one place (the public contract, §3)."""

from __future__ import annotations

# the labels every part reads, stated in api/naming.py (re-exported for the builders)
from recluster.api.naming import APP as APP
from recluster.api.naming import APP_LABEL as APP_LABEL
from recluster.api.naming import CLUSTER_LABEL as CLUSTER_LABEL
from recluster.api.naming import NODE_CONTAINER as NODE_CONTAINER
from recluster.api.naming import NODE_ROLE as NODE_ROLE
from recluster.api.naming import ROLE_LABEL as ROLE_LABEL
from recluster.api.rec import RedisEnterpriseCluster

SERVICE_LABEL = "redis.io/service"

RIGGER_ROLE = "services-rigger"
BROKER_ROLE = "service-broker"

RIGGER_CONTAINER = "services-rigger"
BROKER_CONTAINER = "service-broker"
VOLUME_CLAIM_TEMPLATE = "redis-enterprise-storage"


def statefulset_name(rec: RedisEnterpriseCluster) -> str:
    return rec.name


def nodes_service_name(rec: RedisEnterpriseCluster) -> str:
    """The headless Service that governs the StatefulSet and serves the REST API and Sentinel."""
    return rec.name


def ui_service_name(rec: RedisEnterpriseCluster) -> str:
    return f"{rec.name}-ui"


def prom_service_name(rec: RedisEnterpriseCluster) -> str:
    return f"{rec.name}-prom"


def rigger_name(rec: RedisEnterpriseCluster) -> str:
    return f"{rec.name}-services-rigger"


def broker_name(rec: RedisEnterpriseCluster) -> str:
    """Deployment, Service and PVC of the service broker (the contract suggests `<rec>-service-broker`)."""
    return f"{rec.name}-service-broker"


def broker_auth_secret_name(rec: RedisEnterpriseCluster) -> str:
    """The broker's own credential (`username`, `password`): what platforms send it as Basic auth.
    Never the REC's admin credential."""
    return broker_name(rec)


def broker_tls_secret_name(rec: RedisEnterpriseCluster) -> str:
    """The broker's serving certificate (`tls.crt`, `tls.key`) and the CA platforms trust (`ca.crt`)."""
    return f"{broker_name(rec)}-tls"


def broker_tls_names(rec: RedisEnterpriseCluster, cluster_domain: str = "cluster.local") -> list[str]:
    """Subject alternative names of the broker's certificate: its Service, short and qualified."""
    name = broker_name(rec)
    return [f"{name}.{rec.namespace}.svc.{cluster_domain}", f"{name}.{rec.namespace}.svc",
            f"{name}.{rec.namespace}", name]


def service_domain(rec: RedisEnterpriseCluster, cluster_domain: str = "cluster.local") -> str:
    """The DNS domain of the REC's Services (the databases' among them): `<namespace>.svc.<domain>`."""
    return f"{rec.namespace}.svc.{cluster_domain}"


def credentials_secret_name(rec: RedisEnterpriseCluster) -> str:
    return rec.credentials_secret_name


def tls_secret_name(rec: RedisEnterpriseCluster) -> str:
    return rec.tls_secret_name


def database_ca_name(rec: RedisEnterpriseCluster) -> str:
    """ConfigMap with the CA (`ca.crt`) a client of the REC's TLS databases trusts."""
    return f"{rec.name}-database-ca"


def service_account_name(rec: RedisEnterpriseCluster) -> str:
    return rec.spec.service_account_name or rec.name


def role_name(rec: RedisEnterpriseCluster) -> str:
    return rec.name


def pod_disruption_budget_name(rec: RedisEnterpriseCluster) -> str:
    return rec.name


def cluster_labels(rec: RedisEnterpriseCluster) -> dict[str, str]:
    """The labels that say "this belongs to that REC"."""
    return {APP_LABEL: APP, CLUSTER_LABEL: rec.name}


def selector_labels(rec: RedisEnterpriseCluster, role: str) -> dict[str, str]:
    """Pod selector of one kind of pod. Never includes extraLabels: selectors are immutable."""
    return {**cluster_labels(rec), ROLE_LABEL: role}


def node_selector_labels(rec: RedisEnterpriseCluster) -> dict[str, str]:
    return selector_labels(rec, NODE_ROLE)


def object_labels(rec: RedisEnterpriseCluster, role: str | None = None) -> dict[str, str]:
    """Labels of an object: the user's extraLabels, then ours (the validator refuses overlaps)."""
    labels = dict(rec.spec.extra_labels or {})
    labels.update(cluster_labels(rec))
    if role is not None:
        labels[ROLE_LABEL] = role
    return labels


def node_address(rec: RedisEnterpriseCluster, pod_name: str, cluster_domain: str = "cluster.local") -> str:
    """The stable DNS name of a node pod under the governing headless Service."""
    return f"{pod_name}.{nodes_service_name(rec)}.{rec.namespace}.svc.{cluster_domain}"


def cluster_fqdn(rec: RedisEnterpriseCluster, cluster_domain: str = "cluster.local") -> str:
    """The cluster's name in the REST API (`create_cluster`), as in Redis Enterprise: the REC's FQDN."""
    return f"{nodes_service_name(rec)}.{rec.namespace}.svc.{cluster_domain}"


def api_url(rec: RedisEnterpriseCluster, cluster_domain: str = "cluster.local") -> str:
    return f"https://{cluster_fqdn(rec, cluster_domain)}:9443"


def tls_names(rec: RedisEnterpriseCluster, cluster_domain: str = "cluster.local") -> list[str]:
    """Subject alternative names for the nodes' certificate: every node, the API and the console."""
    namespace_domain = f"{rec.namespace}.svc.{cluster_domain}"
    return [
        cluster_fqdn(rec, cluster_domain),
        f"*.{cluster_fqdn(rec, cluster_domain)}",
        f"{ui_service_name(rec)}.{namespace_domain}",
        f"{nodes_service_name(rec)}.{rec.namespace}.svc",
        f"{nodes_service_name(rec)}.{rec.namespace}",
        nodes_service_name(rec),
    ]
