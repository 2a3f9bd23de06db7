"""S3-compatible object storage (backups, export, import): the one adapter over boto3.

A `S3Store` holds one location (endpoint, region, bucket, credentials, the CA that verifies the
endpoint) and does blocking calls; async callers run them in a thread. Every failure becomes an
`S3Error` whose message names the problem in the user's terms (no such bucket, the credentials were
refused, the endpoint cannot be reached, its certificate is not trusted) and never holds the secret
key: botocore's own messages name the access key id at most."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
ATTEMPTS = 3
# Multipart parts of 16 MiB, four at a time: a 1 GiB RDB is 64 parts.
TRANSFER = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)


class S3Error(Exception):
    """An S3 call failed; `code` is S3's error code (NoSuchBucket, SignatureDoesNotMatch, ...) or
    one of ours (Unreachable, UntrustedCertificate), the message says it for a person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class S3Location:
    """A bucket (and a key prefix in it) at an endpoint; endpoint_url None means AWS's own."""

    bucket: str
    credentials: S3Credentials
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    ca_pem: str | None = field(default=None, repr=False)

    def key(self, name: str) -> str:
        return f"{self.prefix.strip('/')}/{name}" if self.prefix.strip("/") else name

    def where(self) -> str:
        """How messages name the location: s3://bucket/prefix at endpoint (no credentials)."""
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix.strip('/')}{at}"


def _explain(exc: Exception, location: S3Location, what: str) -> S3Error:
    where = location.where()
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in ("NoSuchBucket",):
            return S3Error(code, f"{what}: the bucket {location.bucket!r} does not exist ({where})")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return S3Error(code, f"{what}: the S3 credentials (access key id "
                                 f"{location.credentials.access_key_id!r}) were refused: {code} ({where})")
        if code in ("NoSuchKey", "404"):
            return S3Error("NoSuchKey", f"{what}: no such object ({where})")
        return S3Error(code or "Error", f"{what}: S3 answered {code}: {error.get('Message', '')} ({where})")
    if isinstance(exc, SSLError):
        return S3Error("UntrustedCertificate", f"{what}: the endpoint's TLS certificate is not trusted "
                                               f"(give the CA that signed it) ({where})")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return S3Error("Unreachable", f"{what}: the S3 endpoint cannot be reached ({where})")
    return S3Error(type(exc).__name__, f"{what}: {exc} ({where})")


class S3Store:
    """Blocking S3 calls on one location."""

    def __init__(self, location: S3Location):
        self.location = location
        self._ca_file: Any = None
        verify: bool | str = True
        if location.ca_pem:
            self._ca_file = tempfile.NamedTemporaryFile("w", suffix=".pem", prefix="s3-ca-")  # noqa: SIM115
            self._ca_file.write(location.ca_pem)
            self._ca_file.flush()
            verify = self._ca_file.name
        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path" if location.endpoint_url else "auto"},
            # S3-compatible stores need not know the newer default checksums (aws-chunked bodies)
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=location.endpoint_url,
            region_name=location.region,
            aws_access_key_id=location.credentials.access_key_id,
            aws_secret_access_key=location.credentials.secret_access_key,
            verify=verify,
            config=config,
        )

    def close(self) -> None:
        self._client.close()
        if self._ca_file is not None:
            self._ca_file.close()

    def __enter__(self) -> S3Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, self.location, what) from None

    def check(self) -> None:
        """The bucket exists and the credentials may use it (HEAD bucket)."""
        try:
            with self._calling("checking the bucket"):
                self._client.head_bucket(Bucket=self.location.bucket)
        except S3Error as exc:
            if exc.code != "NoSuchKey":  # HEAD has no body: a 404 is the bucket's
                raise
            raise S3Error("NoSuchBucket", f"checking the bucket: the bucket {self.location.bucket!r} "
                                          f"does not exist ({self.location.where()})") from None

    def upload_file(self, path: Path, name: str) -> None:
        with self._calling(f"uploading {name}"):
            self._client.upload_file(str(path), self.location.bucket, self.location.key(name),
                                     Config=TRANSFER)

    def upload_stream(self, stream: IO[bytes], name: str) -> None:
        with self._calling(f"uploading {name}"):
            self._client.upload_fileobj(stream, self.location.bucket, self.location.key(name),
                                        Config=TRANSFER)

    def put_bytes(self, data: bytes, name: str) -> None:
        with self._calling(f"uploading {name}"):
            self._client.put_object(Bucket=self.location.bucket, Key=self.location.key(name), Body=data)

    def get_bytes(self, name: str) -> bytes:
        with self._calling(f"reading {name}"):
            body = self._client.get_object(Bucket=self.location.bucket, Key=self.location.key(name))["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def download_file(self, name: str, path: Path) -> None:
        with self._calling(f"downloading {name}"):
            self._client.download_file(self.location.bucket, self.location.key(name), str(path),
                                       Config=TRANSFER)

    def list_names(self, under: str = "") -> list[str]:
        """Object names below the location's prefix (and `under` in it), relative to the prefix."""
        prefix = self.location.key(under) if under else self.location.key("")
        names: list[str] = []
        with self._calling("listing objects"):
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=prefix
            ):
                names += [item["Key"][len(self.location.key("")) :] for item in page.get("Contents", [])]
        return names

    def delete(self, name: str) -> None:
        with self._calling(f"deleting {name}"):
            self._client.delete_object(Bucket=self.location.bucket, Key=self.location.key(name))

    def create_bucket(self) -> None:
        with self._calling("creating the bucket"):
            self._client.create_bucket(Bucket=self.location.bucket)
