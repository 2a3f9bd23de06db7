"""Certificates the operator makes: a CA per cluster and the nodes' certificate it signs (Secret
`<rec>-tls`), and the admission webhook's own CA and serving certificate (`recluster.certificates`
makes them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from recluster.certificates import Authority
from recluster.operator.specs.secrets import TlsMaterial

CA_DAYS = 3650
LEAF_DAYS = 825


def issue_server_certificate(
    common_name: str, names: Sequence[str], *, now: dt.datetime | None = None
) -> TlsMaterial:
    """A fresh CA and a serving certificate for `names` signed by it. The CA's key is not kept: no
    one, the operator included, can mint another certificate this CA vouches for (rotation means a
    new CA, which the operator distributes with the new certificate)."""
    ca = Authority.create(f"{common_name} CA", days=CA_DAYS, now=now)
    leaf = ca.issue(common_name, names, days=LEAF_DAYS, server=True, client=True, now=now)
    return TlsMaterial(certificate_pem=leaf.certificate, private_key_pem=leaf.key,
                       ca_certificate_pem=ca.pem().certificate)
