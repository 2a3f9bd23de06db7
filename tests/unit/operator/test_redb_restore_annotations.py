"""What a REDB's restore annotations ask for (operator/redb/restore.py): the import source with the
Secret's keys, or an error naming the annotation and the rule, never a key."""

from __future__ import annotations

import json

import pytest

from recluster.operator.redb.restore import (
    RESTORE_CREDENTIALS,
    RESTORE_FROM,
    RESTORED,
    RestoreInvalid,
    import_source,
    restore_wanted,
)

pytestmark = pytest.mark.unit

SOURCE = {"type": "s3", "bucket_name": "backups", "subdir": "e2e", "endpoint_url": "http://198.18.16.1:9000",
          "filename": "db/20261207T120000Z/manifest.json"}
SECRET = {"access_key_id": "AKID", "secret_access_key": "the-secret"}
PEM = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"


def annotations(source: object = SOURCE, credentials: str | None = "s3-keys") -> dict[str, str]:
    found = {RESTORE_FROM: source if isinstance(source, str) else json.dumps(source)}
    if credentials:
        found[RESTORE_CREDENTIALS] = credentials
    return found


def test_the_source_gets_the_secrets_keys() -> None:
    assert import_source(annotations(), SECRET) == {**SOURCE, **SECRET}
    assert import_source(annotations(), {**SECRET, "ca_cert": PEM})["ca_cert"] == PEM
    mount = {"type": "mount_point", "path": "/mnt/b", "filename": "db/x/manifest.json"}
    assert import_source(annotations(mount, None), None) == mount


def test_it_runs_once() -> None:
    assert restore_wanted(annotations())
    assert not restore_wanted({**annotations(), RESTORED: "succeeded"})
    assert not restore_wanted({})


@pytest.mark.parametrize(("given", "secret", "message"), [
    (annotations("{not json"), SECRET, f"annotation {RESTORE_FROM} is not JSON"),
    (annotations("[1]"), SECRET, "must be a JSON object"),
    (annotations({**SOURCE, "secret_access_key": "the-secret"}), SECRET, "must not hold keys"),
    (annotations({**SOURCE, "filename": ""}), SECRET, "needs 'filename'"),
    (annotations(credentials=None), SECRET, f"annotation {RESTORE_CREDENTIALS} must name the Secret"),
    (annotations(), None, "the Secret s3-keys (recluster.redis.io/restore-credentials) does not exist"),
    (annotations(), {"access_key_id": "AKID"}, "has no secret_access_key"),
    (annotations({**SOURCE, "type": "gs"}), SECRET, "type 'gs' (Google Cloud Storage) is not supported yet"),
    (annotations({**SOURCE, "bucket_name": "Bad_Bucket"}), SECRET, f"{RESTORE_FROM}.bucket_name"),
])
def test_what_cannot_be_acted_on_is_named(given: dict[str, str], secret: dict[str, str] | None,
                                          message: str) -> None:
    with pytest.raises(RestoreInvalid) as caught:
        import_source(given, secret)
    assert message in str(caught.value)
    assert "the-secret" not in str(caught.value)
