"""The S3-compatible server of development and tests: tools/s3 (gofakes3, a real HTTP S3 server with
a disk backend, behind a Signature Version 4 check), built from its Go module and cached like the
other tools (a cold build is under a minute on 2 cores).

`start_s3_server` runs it as a recorded process (see processes.py) on one address: 127.0.0.1 for
tests on this machine, or the local cluster's bridge address (198.18.x.1) so that pods reach it. Its
credentials are given in the environment, never in argv, and kept in a 0600 file beside its data."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from recluster.local import processes
from recluster.local.kubebuild import module_binary
from recluster.local.paths import repo_dir
from recluster.local.run import CommandError

NAME = "s3"
DEFAULT_BUCKET = "recluster-backups"
START_TIMEOUT = 20.0
LISTENING = re.compile(rb"^listening (https?://\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class S3Endpoint:
    """Where the server listens and the credentials it takes (repr hides the secret)."""

    url: str
    access_key_id: str
    secret_access_key: str
    bucket: str
    region: str = "us-east-1"

    def __repr__(self) -> str:
        return f"S3Endpoint(url={self.url!r}, access_key_id={self.access_key_id!r}, bucket={self.bucket!r})"

    def to_json(self) -> str:
        return json.dumps({
            "url": self.url, "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key, "bucket": self.bucket, "region": self.region,
        })

    @classmethod
    def from_json(cls, text: str) -> S3Endpoint:
        data = json.loads(text)
        return cls(data["url"], data["access_key_id"], data["secret_access_key"], data["bucket"],
                   data["region"])


def module() -> Path:
    return Path(repo_dir()) / "tools" / "s3"


def ensure_s3_server(console: Console | None = None) -> Path:
    """The path of the `recluster-s3` binary, built once per tools/s3 contents and Go toolchain."""
    return module_binary(module(), ".", "recluster-s3", console or Console(stderr=True))


def new_credentials() -> tuple[str, str]:
    """A random access key id and secret (letters and digits, as S3's)."""
    return "RC" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)


def start_s3_server(
    binary: Path,
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    bucket: str = DEFAULT_BUCKET,
    tls: tuple[Path, Path] | None = None,
    name: str = NAME,
    run_dir: Path | None = None,
) -> tuple[processes.ProcessRecord, S3Endpoint]:
    """Start the server on host:port (0: any free port) with its buckets under state_dir/data, and
    wait (START_TIMEOUT) until it says where it listens. `tls` is (certificate, key) to serve HTTPS;
    `run_dir` is where its pid is recorded (default state_dir/run; a local cluster's own run
    directory, so that `local down` stops it too)."""
    run_dir = run_dir or state_dir / "run"
    if not (host == "127.0.0.1" or host.startswith("198.18.") or host.startswith("198.19.")):
        raise CommandError(f"the S3 server listens on 127.0.0.1 or the local cluster's range only, "
                           f"not {host}")
    access_key, secret_key = new_credentials()
    argv = [str(binary), "-address", f"{host}:{port}", "-data", str(state_dir / "data"), "-bucket", bucket]
    if tls is not None:
        argv += ["-tls-cert", str(tls[0]), "-tls-key", str(tls[1])]
    env = {**os.environ, "RECLUSTER_S3_ACCESS_KEY": access_key, "RECLUSTER_S3_SECRET_KEY": secret_key}
    log = state_dir / "logs" / f"{name}.log"
    offset = log.stat().st_size if log.exists() else 0
    record = processes.start(name, argv, run_dir=run_dir, log_dir=log.parent, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with log.open("rb") as handle:
            handle.seek(offset)
            found = LISTENING.search(handle.read())
        if found is not None:
            break
        if not record.alive() or time.monotonic() > deadline:
            processes.stop(name, run_dir)
            tail = log.read_bytes()[offset:].decode(errors="replace").strip().splitlines()[-5:]
            raise CommandError(f"the S3 server did not say where it listens within {START_TIMEOUT:.0f}s",
                               argv=argv, tail=tail, log=log)
        time.sleep(0.05)
    endpoint = S3Endpoint(found.group(1).decode(), access_key, secret_key, bucket)
    credentials = state_dir / "s3.json"
    credentials.touch(mode=0o600)
    credentials.write_text(endpoint.to_json())
    return record, endpoint


def running_endpoint(state_dir: Path, name: str = NAME, run_dir: Path | None = None) -> S3Endpoint | None:
    """The endpoint of the server started in state_dir, when it still runs."""
    record = processes.read(name, run_dir or state_dir / "run")
    credentials = state_dir / "s3.json"
    if record is None or not record.alive() or not credentials.exists():
        return None
    return S3Endpoint.from_json(credentials.read_text())


def stop_s3_server(state_dir: Path, name: str = NAME, run_dir: Path | None = None) -> bool:
    """Stop the server recorded in state_dir (its data stays). True when it was running."""
    return processes.stop(name, run_dir or state_dir / "run")


def endpoint_text(endpoint: S3Endpoint, credentials_file: Path, show_secret: bool) -> str:
    """How to reach the server, for the terminal: the secret only when asked for, else where it is."""
    secret = endpoint.secret_access_key if show_secret else f"(in {credentials_file}, key secret_access_key)"
    return "\n".join([
        "S3-compatible server (tools/s3):",
        f"  endpoint URL:      {endpoint.url}",
        f"  region:            {endpoint.region}",
        f"  bucket:            {endpoint.bucket}",
        f"  access key id:     {endpoint.access_key_id}",
        f"  secret access key: {secret}",
    ])
