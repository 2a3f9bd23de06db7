"""A new REDB made from a backup (issue 20), the pure part: what its annotations ask for.

    metadata:
      annotations:
        recluster.redis.io/restore-from: >-
          {"type": "s3", "bucket_name": "backups", "subdir": "prod", "endpoint_url": "http://...",
           "filename": "orders/20261207T124357Z/manifest.json"}
        # a Secret with access_key_id, secret_access_key and, optionally, ca_cert
        recluster.redis.io/restore-credentials: s3-credentials

As CloudNativePG's recovery bootstrap names an object store and a Secret for its credentials, the
REDB names the backup (the import source of POST /v1/bdbs/{uid}/actions/import, without keys) and
the Secret holding the keys. Once its database is first active the operator imports the backup into
it, once: the result is written to the annotation `recluster.redis.io/restored` (`succeeded ...` or
`failed: <why>`) and as events; the keys never leave the Secret but for the import call."""

from __future__ import annotations

import json
from typing import Any

from recluster.api.backup import parse_destination
from recluster.api.field_errors import SpecInvalid

RESTORE_FROM = "recluster.redis.io/restore-from"
RESTORE_CREDENTIALS = "recluster.redis.io/restore-credentials"
RESTORED = "recluster.redis.io/restored"
SECRET_KEYS = ("access_key_id", "secret_access_key")


class RestoreInvalid(ValueError):
    """The annotations cannot be acted on; the message names the annotation and the rule."""


def restore_wanted(annotations: dict[str, str]) -> bool:
    """The REDB asks for a restore that has not run yet."""
    return RESTORE_FROM in annotations and RESTORED not in annotations


def import_source(annotations: dict[str, str], secret: dict[str, str] | None) -> dict[str, Any]:
    """The import source (a location object with filename) the annotations and the Secret's decoded
    data make, or RestoreInvalid naming what is wrong (never a secret value)."""
    try:
        source = json.loads(annotations[RESTORE_FROM])
    except ValueError:
        raise RestoreInvalid(f"annotation {RESTORE_FROM} is not JSON") from None
    if not isinstance(source, dict):
        raise RestoreInvalid(f"annotation {RESTORE_FROM} must be a JSON object")
    if any(key in source for key in ("secret_access_key", "access_key_id")):
        raise RestoreInvalid(f"annotation {RESTORE_FROM} must not hold keys: put them in the Secret named by "
                             f"{RESTORE_CREDENTIALS}")
    filename = source.get("filename")
    if not isinstance(filename, str) or not filename.strip("/"):
        raise RestoreInvalid(f"annotation {RESTORE_FROM} needs 'filename': the backup's manifest.json or an "
                             "RDB file")
    if source.get("type") == "s3":
        name = annotations.get(RESTORE_CREDENTIALS)
        if not name:
            raise RestoreInvalid(f"annotation {RESTORE_CREDENTIALS} must name the Secret with the S3 keys")
        if secret is None:
            raise RestoreInvalid(f"the Secret {name} ({RESTORE_CREDENTIALS}) does not exist")
        missing = [key for key in SECRET_KEYS if not secret.get(key)]
        if missing:
            raise RestoreInvalid(f"the Secret {name} ({RESTORE_CREDENTIALS}) has no {', '.join(missing)}")
        source = {**source, **{key: secret[key] for key in (*SECRET_KEYS, "ca_cert") if secret.get(key)}}
    try:
        parse_destination(source, RESTORE_FROM)
    except SpecInvalid as exc:
        raise RestoreInvalid(str(exc)) from None
    return source
