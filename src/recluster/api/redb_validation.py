"""The rules of a REDB spec, on creation and on change. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from recluster.api.engine_change import engine_change_refusal, upgrade_running
from recluster.api.engine_versions import REDB_FORMAT, effective_version, follows_default, normalize_version
from recluster.api.field_errors import (
    DNS1123_SUBDOMAIN,
    FieldError,
    SpecInvalid,
    name_errors,
    parse_body,
    plain,
)
from recluster.api.field_review import field_review
from recluster.api.quantity import (
    QuantityError,
    parse_memory_size,
)
from recluster.api.redb import (
    DATABASE_PORT_RANGE,
    MAX_SHARD_COUNT,
    MIN_MEMORY_SIZE,
    REPLICA_SSL_REFUSED,
    RedisEnterpriseDatabase,
    RedisEnterpriseDatabaseSpec,
    TlsMode,
)
from recluster.api.redb import KIND as REDB_KIND
from recluster.api.redb_backup import backup_errors

# The rigger names a database's Services "<redb>", "<redb>-headless" and "<redb>-load-balancer".
MAX_REDB_NAME_LENGTH = 63 - len("-load-balancer")

# --- REDB ------------------------------------------------------------------------------------


def parse_redb(body: Mapping[str, Any]) -> tuple[RedisEnterpriseDatabase | None, list[FieldError]]:
    return parse_body(body, RedisEnterpriseDatabase, RedisEnterpriseDatabaseSpec)


def validate_redb(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    cluster_exists: bool,
    ports_in_use: Iterable[int] = (),
    versions: Sequence[str] | None = None,
    default: str | None = None,
) -> list[FieldError]:
    """Every broken rule of a REDB. `cluster_exists`: the REC it names (or the namespace's REC) exists;
    `ports_in_use`: the ports of the *other* databases of that cluster; `versions`: the engine versions
    the cluster runs (`bundled_names` of the REC's status; None: not known yet, not checked);
    `default`: the one it gives new databases (`default_name`), what `redisVersion: latest` means."""
    return _validate_redb(new, old, cluster_exists, ports_in_use, versions, default)[1]


def check_redb(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    cluster_exists: bool,
    ports_in_use: Iterable[int] = (),
    versions: Sequence[str] | None = None,
    default: str | None = None,
) -> RedisEnterpriseDatabase:
    """The REDB model of a valid body; raises SpecInvalid with every error otherwise."""
    redb, errors = _validate_redb(new, old, cluster_exists, ports_in_use, versions, default)
    if errors or redb is None:
        raise SpecInvalid(errors)
    return redb


def _validate_redb(
    new: Mapping[str, Any], old: Mapping[str, Any] | None, cluster_exists: bool, ports_in_use: Iterable[int],
    versions: Sequence[str] | None, default: str | None,
) -> tuple[RedisEnterpriseDatabase | None, list[FieldError]]:
    errors = name_errors(plain(new).get("metadata", {}).get("name"), MAX_REDB_NAME_LENGTH, "database")
    errors += field_review(REDB_KIND, new, old)[0]
    redb, schema_errors = parse_redb(new)
    errors += schema_errors
    if redb is None:
        return None, errors
    spec = redb.spec
    if not cluster_exists:
        errors.append(
            FieldError(
                "spec.redisEnterpriseCluster.name",
                "cluster-exists",
                f"no RedisEnterpriseCluster {redb.cluster_name!r} in namespace {redb.metadata.namespace!r}"
                if redb.cluster_name
                else f"no RedisEnterpriseCluster in namespace {redb.metadata.namespace!r}",
            )
        )
    try:
        if parse_memory_size(spec.memory_size) < parse_memory_size(MIN_MEMORY_SIZE):
            errors.append(
                FieldError(
                    "spec.memorySize", "memory-size", f"{spec.memory_size} is below the minimum of 100MB"
                )
            )
    except QuantityError as error:
        errors.append(FieldError("spec.memorySize", "memory-size", str(error)))
    if spec.shard_count != MAX_SHARD_COUNT:
        errors.append(
            FieldError(
                "spec.shardCount",
                "shard-count",
                f"only 1 shard per database is supported (got {spec.shard_count}); use replication for a "
                "second copy",
            )
        )
    errors += _port_errors(redb, old, set(ports_in_use))
    errors += _tls_errors(redb, old)
    errors += _version_errors(redb, old, versions, default)
    errors += backup_errors(spec.backup)
    if spec.database_service_port is not None and not 1 <= spec.database_service_port <= 65535:
        errors.append(
            FieldError("spec.databaseServicePort", "port-range", "must be a TCP port between 1 and 65535")
        )
    secret = spec.database_secret_name
    if secret is not None and (len(secret) > 253 or not DNS1123_SUBDOMAIN.match(secret)):
        errors.append(FieldError("spec.databaseSecretName", "name", f"{secret!r} is not a valid Secret name"))
    return redb, errors


def _version_errors(
    redb: RedisEnterpriseDatabase, old: Mapping[str, Any] | None, versions: Sequence[str] | None,
    default: str | None,
) -> list[FieldError]:
    """`redisVersion`: written as a version (or `latest`/`major`: the cluster's `default`), one the
    cluster runs, and, on a database that exists, only raised within its engine while it has a replica
    and no other upgrade runs (the rule of `recluster.api.engine_change`, the REST API's too). A value
    the REDB had before (an older operator ignored the field) is left alone: the database keeps the
    engine it runs; so is an unchanged `latest` (following a new default is the reconcile's, which says
    when it cannot)."""
    asked = redb.spec.redis_version
    if asked is None:
        return []
    previous = parse_redb(old)[0] if old is not None else None
    if previous is not None and previous.spec.redis_version == asked:
        return []
    wanted = effective_version(asked, default)
    if wanted is None:  # latest, while the cluster's default is not known: the cluster picks its newest
        return []
    version = normalize_version(wanted)
    if version is None:
        return [FieldError("spec.redisVersion", "version", f"{asked!r} is not a version: {REDB_FORMAT}")]
    if versions is not None and version not in versions:
        return [FieldError("spec.redisVersion", "version", f"{wanted!r} is not a version the cluster runs; "
                           f"it runs {', '.join(versions) or 'none'} (REC status.bundledDatabaseVersions)")]
    # what the database runs (the reconcile loop's `old` carries the bdb's version; the stored
    # object's status has it once written); a database not created yet may still change its mind
    running = previous.status.version if previous is not None and previous.status is not None else None
    current = normalize_version(running) if running else None
    if previous is None or current is None:
        return []
    before = effective_version(previous.spec.redis_version, default)
    if upgrade_running(before, running):  # back to the old one too: a downgrade
        return [FieldError(
            "spec.redisVersion", "upgrade-running", f"the database is being upgraded from {current} to "
            f"{before}; change redisVersion again once status.version is {before}")]
    if current == version:
        return []
    refusal = engine_change_refusal(current, version, versions,
                                    redb.spec.replication and previous.spec.replication)
    if refusal is not None:
        if follows_default(asked):
            refusal = f"{asked} is {version} in this cluster: {refusal}"
        return [FieldError("spec.redisVersion", "engine-change", refusal)]
    return []


def _tls_errors(redb: RedisEnterpriseDatabase, old: Mapping[str, Any] | None) -> list[FieldError]:
    spec = redb.spec
    errors: list[FieldError] = []
    if spec.tls_mode == TlsMode.REPLICA_SSL:
        errors.append(FieldError("spec.tlsMode", "tls-mode", REPLICA_SSL_REFUSED))
    previous = parse_redb(old)[0] if old is not None else None
    if previous is not None and previous.spec.tls_mode != spec.tls_mode:
        errors.append(FieldError(
            "spec.tlsMode", "immutable", f"cannot change after creation (the database was made with "
            f"{previous.spec.tls_mode}): create a new database with the mode you want"))
    if previous is not None and previous.spec.default_user != spec.default_user:
        errors.append(FieldError(
            "spec.defaultUser", "immutable", f"cannot change after creation (the database was made with "
            f"{str(previous.spec.default_user).lower()}): create a new database with the setting you want"))
    names = spec.client_authentication_certificates or []
    if names and spec.tls_mode != TlsMode.ENABLED:
        errors.append(FieldError(
            "spec.clientAuthenticationCertificates", "needs-tls",
            "client certificates are checked only in a TLS handshake: set tlsMode: enabled or remove the "
            "list"))
    for index, name in enumerate(names):
        if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            errors.append(FieldError(f"spec.clientAuthenticationCertificates[{index}]", "name",
                                     f"{name!r} is not a valid Secret name"))
    return errors


def _assigned_port(old: Mapping[str, Any] | None) -> int | None:
    """The port the database had: its spec's, else the one the cluster assigned (status)."""
    if old is None:
        return None
    previous, _ = parse_redb(old)
    if previous is None:
        return None
    if previous.spec.database_port is not None:
        return previous.spec.database_port
    for endpoint in (previous.status.internal_endpoints or []) if previous.status else []:
        if endpoint.port is not None:
            return endpoint.port
    return None


def _port_errors(
    redb: RedisEnterpriseDatabase, old: Mapping[str, Any] | None, in_use: set[int]
) -> list[FieldError]:
    port = redb.spec.database_port
    if port is None:
        return []
    errors: list[FieldError] = []
    if port not in DATABASE_PORT_RANGE:
        errors.append(
            FieldError(
                "spec.databasePort",
                "port-range",
                f"{port} is outside the database port range "
                f"{DATABASE_PORT_RANGE.start}-{DATABASE_PORT_RANGE.stop - 1}",
            )
        )
    elif port in in_use:
        errors.append(
            FieldError("spec.databasePort", "port-unique", f"{port} is already used by another database")
        )
    assigned = _assigned_port(old)
    if assigned is not None and port != assigned:
        errors.append(
            FieldError(
                "spec.databasePort",
                "immutable",
                f"cannot change after creation (the database listens on {assigned}): clients and Services "
                "depend on it; create a new database instead",
            )
        )
    return errors


