"""HTTP Basic credentials as recluster's HTTP servers read them (the node's REST API and the service
broker): one parser, so a malformed header is refused the same way everywhere. Pure."""

from __future__ import annotations

import base64
import binascii


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header; None when absent or malformed."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
