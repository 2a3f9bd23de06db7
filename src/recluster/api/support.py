"""What recluster does with every spec field of the public contract, stated once: the validator, the
admission webhook and the reconcile loops all read these tables. Pure.

- IMPLEMENTED: the operator acts on the field.
- IGNORED: accepted but not acted on (cosmetic, or about an environment recluster does not have):
  the user is warned, the object is stored and reconciled.
- REFUSED: not implemented yet, and without it the user would get less safety or different data
  than asked (a plaintext database asked for TLS, no password asked for ACL users, no backups...):
  a value that asks for the feature is refused, naming the field. A value that asks for nothing
  (`tlsMode: disabled`, `defaultUser: true`, an empty list) is what recluster does anyway and
  passes. A value that was accepted before (an object stored by an operator that did not refuse
  it yet) is kept on update, with a warning, so existing objects are never locked out.

A key that is not in a table (not in the contract: a typo such as `memroySize`) is warned about.
Keys inside blocks with a schema (`persistentSpec`, images, resources ...) are the schema's: the
apiserver and the validator already name the unknown ones there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from recluster.api.rec import KIND as REC_KIND
from recluster.api.redb import KIND as REDB_KIND


class Support(StrEnum):
    IMPLEMENTED = "implemented"
    IGNORED = "ignored"
    REFUSED = "refused"


def asks_nothing(value: Any) -> bool:
    """A value that turns nothing on: absent, false, empty, or a block made only of such values."""
    if value is None or value is False or value in ("", [], {}):
        return True
    return isinstance(value, Mapping) and all(asks_nothing(item) for item in value.values())


def _is(*allowed: Any) -> Callable[[Any], bool]:
    return lambda value: value is None or value in allowed


@dataclass(frozen=True)
class SpecField:
    """One field of the contract: its path under `spec` (dotted), what recluster does with it, why
    (shown to users for IGNORED and REFUSED fields), and for REFUSED fields the values that ask for
    nothing recluster lacks."""

    path: str
    support: Support
    reason: str = ""
    harmless: Callable[[Any], bool] = asks_nothing


def _implemented(*paths: str) -> list[SpecField]:
    return [SpecField(path, Support.IMPLEMENTED) for path in paths]


def _ignored(reason: str, *paths: str) -> list[SpecField]:
    return [SpecField(path, Support.IGNORED, reason) for path in paths]


def _refused(path: str, reason: str, harmless: Callable[[Any], bool] = asks_nothing) -> SpecField:
    return SpecField(path, Support.REFUSED, reason, harmless)


_NOT_ON_PODS = "not applied to the pods"

REC_FIELDS: tuple[SpecField, ...] = (
    *_implemented(
        "nodes", "managed", "redisEnterpriseNodeResources", "persistentSpec", "redisEnterpriseImageSpec",
        "redisEnterpriseServicesRiggerImageSpec", "redisEnterpriseServicesRiggerResources", "pullSecrets",
        "uiServiceType", "uiAnnotations", "servicesRiggerSpec", "servicesRiggerSpec.databaseServiceType",
        "servicesRiggerSpec.serviceNaming", "servicesRiggerSpec.extraEnvVars",
        "servicesRiggerSpec.podAnnotations", "username", "license", "licenseSecretName",
        "clusterCredentialSecretName", "serviceAccountName", "createServiceAccount", "extraLabels",
        "podAnnotations", "nodeSelector", "podAntiAffinity", "antiAffinityAdditionalTopologyKeys",
        "rackAwarenessNodeLabel", "podTolerations", "priorityClassName", "sideContainersSpec",
        "extraEnvVars", "clusterRecovery", "redisEnterpriseTerminationGracePeriodSeconds",
        "serviceBrokerSpec", "slaveHA", "slaveHA.slaveHAGracePeriod",
    ),
    *_ignored(
        "recluster runs no bootstrapper sidecar (the node daemon bootstraps itself)",
        "bootstrapperImageSpec", "bootstrapperResources",
    ),
    *_ignored("the nodes use the pod's address as Kubernetes gives it, nothing reads ENFORCE_IPV4",
              "enforceIPv4"),
    *_ignored(
        "the nodes run redisEnterpriseImageSpec, else the operator's own image (so they follow the "
        "operator unless an image is pinned), and there are no modules and no database version policy",
        "upgradeSpec",
    ),
    *_ignored(
        "a database's Services always listen on the database port (or the REDB's databaseServicePort)",
        "servicesRiggerSpec.databaseServicePortPolicy",
    ),
    *_ignored(
        f"{_NOT_ON_PODS} of the rigger", "servicesRiggerSpec.servicesRiggerAdditionalPodSpecAttributes"
    ),
    *_ignored(
        f"{_NOT_ON_PODS} of the nodes",
        "hostAliases", "volumes", "redisEnterpriseVolumeMounts", "redisEnterpriseAdditionalPodSpecAttributes",
    ),
    *_ignored("the API Service `<rec>` is always ClusterIP, without extra annotations", "services"),
    *_ignored("PodSecurityPolicy no longer exists in Kubernetes", "podSecurityPolicyName"),
    *_ignored("pods stuck starting are left to Kubernetes", "podStartingPolicy"),
    *_ignored(
        "databases are reachable inside Kubernetes only, through the rigger's Services",
        "ingressOrRouteSpec",
    ),
    *_ignored("nothing is metered or reported", "usageMeter"),
    *_ignored("every node runs the same fixed set of services", "redisEnterpriseServicesConfiguration"),
    *_ignored("node pods run in UTC", "containerTimezone"),
    *_ignored("the nodes use the pod's address family", "redisEnterpriseIPFamily"),
    *_ignored("there is no OSS Cluster API (one shard per database)", "ossClusterSettings"),
    *_ignored("clients choose RESP2 or RESP3 themselves (HELLO)", "resp3Default"),
    *_ignored("only used with Vault credentials, which are refused",
              "clusterCredentialSecretRole", "vaultCASecret"),
    _refused(
        "clusterCredentialSecretType",
        "credentials live only in the Kubernetes Secret clusterCredentialSecretName (no Vault): "
        "use kubernetes or leave it out",
        _is("", "kubernetes"),
    ),
    *_implemented("certificates", "certificates.proxyCertificateSecretName",
                  "certificates.apiCertificateSecretName", "certificates.cmCertificateSecretName",
                  "certificates.metricsExporterCertificateSecretName"),
    *[
        _refused(f"certificates.{key}", "only the databases', the REST API's, the console's and the metrics "
                 "endpoint's certificates can be brought (this one's purpose is not built): remove it")
        for key in ("syncerCertificateSecretName", "ldapClientCertificateSecretName",
                    "cpInternodeEncryptionCertificateSecretName",
                    "dpInternodeEncryptionCertificateSecretName")
    ],
    _refused("ocspConfiguration", "certificates are not checked with OCSP: remove the block"),
    _refused("activeActive", "Active-Active databases are not built: remove the block"),
    _refused("redisOnFlashSpec", "Auto Tiering (Redis on Flash) is not built, data stays in RAM: remove it"),
    _refused("ldap", "LDAP authentication is not built (only the cluster's admin user exists): remove it"),
    _refused("sso", "single sign-on is not built: remove it"),
    _refused("backup", "the operator makes no backups: remove the block"),
    _refused(
        "dataInternodeEncryption",
        "traffic between nodes (replication) is not encrypted: remove it or set false",
    ),
    _refused("encryptPkeys", "private keys are not encrypted at rest: remove it or set false"),
    _refused("userDefinedModules", "Redis modules are not supported: remove the list"),
    _refused("auditing", "no audit log is written: remove the block"),
    _refused(
        "securityContext",
        "the node pods keep the operator's own security context (non-root, every capability dropped, "
        "RuntimeDefault seccomp): readOnlyRootFilesystemPolicy and resourceLimits are not built",
    ),
)

REDB_FIELDS: tuple[SpecField, ...] = (
    *_implemented(
        "redisEnterpriseCluster", "memorySize", "shardCount", "replication", "persistence",
        "evictionPolicy", "databaseSecretName", "databasePort", "databaseServicePort", "tlsMode",
        "clientAuthenticationCertificates", "enforceClientAuthentication", "rolesPermissions",
        "defaultUser", "redisVersion", "backup",
    ),
    _refused("type", "only Redis databases exist (no memcached): set redis or leave it out", _is("redis")),
    _refused("replicaSources", "Replica Of (replicating from another database) is not built: remove it"),
    _refused("activeActive", "Active-Active databases are not built: remove the block"),
    _refused("modulesList", "Redis modules are not supported: remove the list"),
    _refused("moduleList", "Redis modules are not supported: remove the list"),
    _refused(
        "isRof", "Auto Tiering (Redis on Flash) is not built, data stays in RAM: remove it or set false"
    ),
    _refused("redisOnFlash", "Auto Tiering (Redis on Flash) is not built, data stays in RAM: remove it"),
    _refused(
        "dataInternodeEncryption",
        "replication between shards is not encrypted: remove it or set false",
    ),
    _refused("auditing", "connections are not audited: remove the block"),
    _refused(
        "rackAware",
        "shard placement does not read racks (with the REC's rackAwarenessNodeLabel every node is in a "
        "rack of its own, so a replica is always in another rack): remove it or set false",
    ),
    *_ignored("no alerts are raised", "alertSettings"),
    *_ignored("there is no OSS Cluster API (one shard per database)", "ossCluster"),
    *_ignored("clients connect to the master shard directly, there is no proxy", "proxyPolicy"),
    *_ignored("a database has one master shard", "shardsPlacement"),
    *_ignored("only with Auto Tiering, which is refused", "rofRamSize"),
    *_ignored(
        "no modules to upgrade: a database follows the cluster's default engine with redisVersion: "
        "latest, or is upgraded in place by raising redisVersion (status.version shows what every "
        "shard runs)",
        "upgradeSpec",
    ),
    *_ignored("clients choose RESP2 or RESP3 themselves (HELLO)", "resp3"),
)

TABLES: dict[str, tuple[SpecField, ...]] = {REC_KIND: REC_FIELDS, REDB_KIND: REDB_FIELDS}


def parents(fields: tuple[SpecField, ...]) -> set[str]:
    """The blocks whose own keys are listed (each key then has its own classification)."""
    return {field.path.rpartition(".")[0] for field in fields if "." in field.path}
