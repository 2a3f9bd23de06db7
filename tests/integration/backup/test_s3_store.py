"""The S3 adapter (clients/s3.py) against the real S3 server of tools/s3: objects go in and come back
whole, and each bad location is a clear S3Error naming the problem, without the secret key."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import pytest

from recluster.clients.s3 import S3Credentials, S3Error, S3Location, S3Store
from recluster.local.s3server import S3Endpoint

pytestmark = pytest.mark.integration


def location(endpoint: S3Endpoint, **changes: object) -> S3Location:
    fields: dict[str, object] = {
        "bucket": endpoint.bucket,
        "credentials": S3Credentials(endpoint.access_key_id, endpoint.secret_access_key),
        "prefix": "store-test",
        "endpoint_url": endpoint.url,
        "region": endpoint.region,
    }
    fields.update(changes)
    return S3Location(**fields)  # type: ignore[arg-type]


def test_objects_round_trip_whole_through_multipart(s3_server: S3Endpoint, tmp_path: Path) -> None:
    source = tmp_path / "dump.rdb"
    source.write_bytes(os.urandom(40 << 20))  # 40 MiB: three multipart parts
    with S3Store(location(s3_server)) as store:
        store.check()
        store.put_bytes(b'{"a": 1}', "one/manifest.json")
        store.upload_file(source, "one/shard-1.rdb")
        assert sorted(store.list_names("one/")) == ["one/manifest.json", "one/shard-1.rdb"]
        assert store.get_bytes("one/manifest.json") == b'{"a": 1}'
        back = tmp_path / "back.rdb"
        store.download_file("one/shard-1.rdb", back)
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()


def test_missing_bucket_is_named(s3_server: S3Endpoint) -> None:
    with S3Store(location(s3_server, bucket="no-such-bucket")) as store:
        with pytest.raises(S3Error) as caught:
            store.put_bytes(b"x", "x")
        with pytest.raises(S3Error) as caught_check:
            store.check()
    for error in (caught.value, caught_check.value):
        assert error.code == "NoSuchBucket"
        assert "the bucket 'no-such-bucket' does not exist" in str(error)


@pytest.mark.parametrize("wrong", ["access key", "secret key"])
def test_wrong_credentials_are_refused_without_showing_the_secret(s3_server: S3Endpoint, wrong: str) -> None:
    secret = "wrong-secret-" + os.urandom(6).hex() if wrong == "secret key" else s3_server.secret_access_key
    key_id = "WRONGKEYID" if wrong == "access key" else s3_server.access_key_id
    with S3Store(location(s3_server, credentials=S3Credentials(key_id, secret))) as store:
        with pytest.raises(S3Error) as caught:
            store.check()
        with pytest.raises(S3Error) as caught_put:
            store.put_bytes(b"x", "refused")
    assert "credentials" in str(caught.value) and "were refused" in str(caught.value)
    assert caught_put.value.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
    for error in (caught.value, caught_put.value):
        assert secret not in str(error) and s3_server.secret_access_key not in str(error)
    with S3Store(location(s3_server)) as store:
        assert "refused" not in store.list_names()


def test_unreachable_endpoint_is_named_within_the_timeouts() -> None:
    with socket.socket() as probe:  # a port on 127.0.0.1 where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "KEY", "SECRET", "bucket")
    started = time.monotonic()
    with S3Store(location(endpoint)) as store, pytest.raises(S3Error) as caught:
        store.check()
    assert caught.value.code == "Unreachable"
    assert f"cannot be reached (s3://bucket/store-test at http://127.0.0.1:{port})" in str(caught.value)
    assert time.monotonic() - started < 30
