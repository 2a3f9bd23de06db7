"""The OSB request headers every broker request carries: which API version the platform speaks, and
who asked (for the audit trail). Pure: a header in, a value or a BrokerError out."""

from __future__ import annotations

import base64
import binascii
import re

from recluster.broker import errors
from recluster.http_limits import loads

# Versions this broker serves: 2.14 added the fetch endpoints it declares in the catalog; later
# minors are additive (the spec's change policy), so any 2.x from 2.14 on is accepted.
MIN_MINOR = 14
API_VERSION_RE = re.compile(r"^(\d{1,9})\.(\d{1,9})$")  # bounded: int() of 4300+ digits raises


def check_api_version(header: str | None) -> None:
    """The spec (2.16+): a request without the required X-Broker-API-Version header is malformed
    (400 Bad Request); a version the broker does not serve gets 412 Precondition Failed."""
    supported = f"2.{MIN_MINOR} or later 2.x (this broker implements 2.17)"
    if header is None or not header.strip():
        raise errors.bad_request(f"the X-Broker-API-Version header is required; use {supported}")
    match = API_VERSION_RE.match(header.strip())
    if match is None:
        raise errors.bad_request(f"X-Broker-API-Version must be MAJOR.MINOR; use {supported}")
    major, minor = int(match[1]), int(match[2])
    if major != 2 or minor < MIN_MINOR:
        raise errors.precondition_failed(f"API version {major}.{minor} is not supported; use {supported}")


def parse_originating_identity(header: str | None) -> str:
    """`platform base64(json)` -> a short audit string ("platform user_id=..."); 400 if malformed."""
    if header is None:
        return ""
    parts = header.strip().split(" ")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise errors.bad_request("X-Broker-API-Originating-Identity must be '<platform> <base64 JSON>'")
    platform, value = parts
    try:
        decoded = loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise errors.bad_request("X-Broker-API-Originating-Identity: the value is not base64 of a JSON "
                                 "object") from exc
    if not isinstance(decoded, dict):
        raise errors.bad_request("X-Broker-API-Originating-Identity: the value must be a JSON object")
    # Only identifiers are kept for the audit trail (user_id on Cloud Foundry, username on Kubernetes).
    who = next((f"{key}={decoded[key]}" for key in ("user_id", "username", "uid")
                if isinstance(decoded.get(key), str)), "")
    return f"{platform} {who}".strip()
