"""What `recluster local up --with-s3` prints and how its endpoint and the S3 location show in logs:
the secret only when asked for, never in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from recluster.clients.s3 import S3Credentials, S3Location
from recluster.local.run import CommandError
from recluster.local.s3server import S3Endpoint, endpoint_text, start_s3_server

pytestmark = pytest.mark.unit

ENDPOINT = S3Endpoint("http://198.18.16.1:40111", "RCKEYID", "the-secret-value", "recluster-backups")


def test_the_secret_is_printed_only_when_asked_for() -> None:
    hidden = endpoint_text(ENDPOINT, Path("/state/s3/s3.json"), show_secret=False)
    assert "the-secret-value" not in hidden
    assert "secret access key: (in /state/s3/s3.json, key secret_access_key)" in hidden
    assert "endpoint URL:      http://198.18.16.1:40111" in hidden and "RCKEYID" in hidden
    assert "secret access key: the-secret-value" in endpoint_text(ENDPOINT, Path("/x"), show_secret=True)


def test_reprs_hold_no_secret() -> None:
    location = S3Location("bucket", S3Credentials("KEYID", "the-secret-value"), ca_pem="PEM")
    for text in (repr(ENDPOINT), repr(location), repr(location.credentials)):
        assert "the-secret-value" not in text
    assert S3Endpoint.from_json(ENDPOINT.to_json()) == ENDPOINT


def test_the_server_listens_only_on_loopback_or_the_local_cluster_range(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"127\.0\.0\.1 or the local cluster's range only, not 0\.0\.0\.0"):
        start_s3_server(tmp_path / "none", tmp_path, host="0.0.0.0")  # noqa: S104


def test_location_keys_sit_under_the_prefix() -> None:
    credentials = S3Credentials("K", "S")
    assert S3Location("b", credentials, prefix="/backups/db1/").key("m.json") == "backups/db1/m.json"
    assert S3Location("b", credentials).key("m.json") == "m.json"
    assert S3Location("b", credentials, prefix="x", endpoint_url="http://127.0.0.1:1").where() == (
        "s3://b/x at http://127.0.0.1:1")
