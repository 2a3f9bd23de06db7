"""The validating admission webhook: the same validator as the reconcile loop, so a spec the loop
would flag is refused before it is stored, and the fields the operator would not act on are named
in the response's warnings (kubectl prints them). Served by kopf's webhook server over HTTPS with a
certificate from OPERATOR_WEBHOOK_CERT_DIR, or one the operator makes at start (then it keeps the
caBundle of OPERATOR_WEBHOOK_CONFIGURATION current)."""

from __future__ import annotations

import asyncio
import base64
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from recluster.api.validation import FieldError, FieldWarning, describe, rec_warnings, validate_rec
from recluster.clients.kubernetes import Kube, KubeError
from recluster.operator.startup import Settings
from recluster.operator.tls import issue_server_certificate

log = logging.getLogger(__name__)

WEBHOOK_API = "admissionregistration.k8s.io/v1"


@dataclass(frozen=True)
class Verdict:
    """An admission's answer: the refusal message (None: the object may be stored) and one warning
    per field the operator will not act on."""

    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, errors: Sequence[FieldError], warnings: Sequence[FieldWarning]) -> Verdict:
        return cls(describe(errors) or None, [str(warning) for warning in warnings])

    def answer(self, response_warnings: list[str]) -> None:
        """Hand it to kopf: warnings into the AdmissionReview response, a refusal as its error."""
        response_warnings.extend(self.warnings)
        if self.refusal:
            raise kopf.AdmissionError(self.refusal, code=422)


def being_deleted(body: Mapping[str, Any]) -> bool:
    """Never block the finalizer's removal (the webhook configuration skips these too)."""
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def rec_admission(body: Mapping[str, Any], old: Mapping[str, Any] | None) -> Verdict:
    """The admission of a REC; `old` is the stored object on an update."""
    if being_deleted(body):
        return Verdict()
    old = old or None
    return Verdict.of(validate_rec(body, old), rec_warnings(body, old))


def serving_files(settings: Settings) -> tuple[Path, Path, str]:
    """(certificate file, key file, CA PEM) of the webhook server."""
    if settings.webhook_cert_dir is not None:
        directory = settings.webhook_cert_dir
        return directory / "tls.crt", directory / "tls.key", (directory / "ca.crt").read_text()
    material = issue_server_certificate(settings.webhook_names[0], list(settings.webhook_names))
    directory = Path(tempfile.mkdtemp(prefix="recluster-webhook-"))
    (directory / "tls.crt").write_text(material.certificate_pem)
    key = directory / "tls.key"
    key.touch(mode=0o600)
    key.write_text(material.private_key_pem)
    return directory / "tls.crt", key, material.ca_certificate_pem


CA_BUNDLE_RECHECK_S = 60.0


async def publish_ca_bundle(kube: Kube, configuration: str, ca_pem: str) -> bool:
    """Point every webhook of the named configuration at our CA; True when a change was made.
    A server-side apply of the caBundle fields alone, so whoever installed the configuration keeps
    owning the rest of it (re-applying the manifest, which has no caBundle, does not undo this)."""
    path = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{configuration}"
    try:
        current = await kube.request("GET", path)
    except KubeError as exc:
        log.warning("cannot read ValidatingWebhookConfiguration %s: %s", configuration, exc)
        return False
    bundle = base64.b64encode(ca_pem.encode()).decode()
    hooks = current.get("webhooks") or []
    if all((hook.get("clientConfig") or {}).get("caBundle") == bundle for hook in hooks):
        return False
    await kube.apply(
        {
            "apiVersion": WEBHOOK_API,
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": configuration},
            "webhooks": [{"name": hook["name"], "clientConfig": {"caBundle": bundle}} for hook in hooks],
        }
    )
    log.info("published the webhook CA in ValidatingWebhookConfiguration %s", configuration)
    return True


async def keep_ca_bundle(kube: Kube, configuration: str, ca_pem: str) -> None:
    """Keep the caBundle current for as long as the operator runs: the configuration may be
    (re)created after the operator started, and until it carries our CA every admission fails."""
    while True:
        try:
            await publish_ca_bundle(kube, configuration, ca_pem)
        except Exception as exc:  # a failed attempt is retried, never fatal
            log.warning("cannot publish the webhook CA in %s: %s", configuration, exc)
        await asyncio.sleep(CA_BUNDLE_RECHECK_S)


class ServingWebhookServer(kopf.WebhookServer):
    """kopf's webhook server, telling `on_serving(True)` once it listens (kopf starts it after the Lease
    and the operator's start-up) and `on_serving(False)` when it stops: the replica's readiness."""

    def __init__(self, *, on_serving: Callable[[bool], object], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_serving = on_serving

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        try:
            async for client_config in super().__call__(fn):
                self.on_serving(True)  # the site has started: it accepts connections
                yield client_config
        finally:
            self.on_serving(False)


def webhook_server(settings: Settings, certfile: Path, keyfile: Path,
                   on_serving: Callable[[bool], object] = lambda serving: None) -> kopf.WebhookServer:
    return ServingWebhookServer(
        addr=settings.webhook_host,
        port=settings.webhook_port,
        certfile=str(certfile),
        pkeyfile=str(keyfile),
        host=settings.webhook_names[0],
        on_serving=on_serving,
    )
