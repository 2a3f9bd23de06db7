"""kopf registrations of the REDB controller only: each handler parses what kopf hands over and
delegates to the REDB loops (operator/loops.py, made once at startup and kept in kopf's memo).

- watch events on a REDB start or wake its level loop (redb/reconcile.py), deletion included: the
  reconciler holds the REDB with the contract finalizer and deletes the database itself;
- the validating webhook (when a webhook server is configured) uses the loop's validator with the
  same facts: the cluster exists, the ports the cluster's other databases use."""

from __future__ import annotations

from typing import Any

import kopf

from recluster.api.common import GROUP
from recluster.api.redb import PLURAL, VERSION
from recluster.operator.context import services
from recluster.operator.redb.validate import redb_admission


@kopf.on.event(GROUP, VERSION, PLURAL)
async def redb_changed(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    services(memo).redb.poke(namespace or "", name)


async def validate(*, body: Any, memo: Any, warnings: list[str], **kwargs: Any) -> None:
    (await redb_admission(services(memo).context, body, kwargs.get("old"))).answer(warnings)


def register_webhook() -> None:
    """The REDB validating webhook (path /validate-redb), only with a webhook server."""
    kopf.on.validate(GROUP, VERSION, PLURAL, id="validate-redb", operations=["CREATE", "UPDATE"])(validate)
