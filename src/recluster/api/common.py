"""Building blocks shared by the REC and REDB models: the camelCase base model, the Kubernetes
pass-through types (kept in their real shape) and the object metadata we read."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from recluster.api.quantity import QUANTITY_PATTERN, is_quantity

GROUP = "app.redislabs.com"


class ApiModel(BaseModel):
    """Fields are snake_case in Python and camelCase in manifests. Unknown keys are refused, because
    the CRD prunes them anyway: a key the schema does not know never reaches the operator."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        use_enum_values=True,
    )

    def manifest(self) -> dict[str, Any]:
        """The object as it appears in a manifest: camelCase, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OpenApiModel(ApiModel):
    """A block whose unknown keys are kept (x-kubernetes-preserve-unknown-fields), so that manifests
    written for the original operator, with fields we do not implement, still apply unchanged."""

    model_config = ConfigDict(extra="allow")


def _check_quantity(value: str | int | float) -> str | int | float:
    if not is_quantity(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 4Gi, 500m, 2)")
    return value


# A resource.Quantity: a string or a number, with the exact CRD schema Kubernetes uses for it.
QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": QUANTITY_PATTERN,
    "x-kubernetes-int-or-string": True,
}
Quantity = Annotated[str | int | float, AfterValidator(_check_quantity), WithJsonSchema(QUANTITY_SCHEMA)]

# Kubernetes objects we pass through untouched (affinity, tolerations, env vars, containers): their
# whole upstream schema is not worth copying, and the apiserver validates them in the pod anyway.
PRESERVE_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
K8sObject = Annotated[dict[str, Any], WithJsonSchema(PRESERVE_OBJECT_SCHEMA)]


class ResourceRequirements(ApiModel):
    """core/v1 ResourceRequirements, with its real schema (limits/requests are maps of quantities)."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None
    claims: list[K8sObject] | None = None


class LocalObjectReference(ApiModel):
    name: str


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    EXTERNAL_NAME = "ExternalName"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class SpecStatus(StrEnum):
    VALID = "Valid"
    INVALID = "Invalid"


class ImageSpec(ApiModel):
    repository: str | None = None
    version_tag: str | None = None
    image_pull_policy: PullPolicy | None = None
    digest_hash: str | None = None

    def image(self, default: str) -> str:
        """The image reference; the repository and tag of `default` fill what this spec leaves out."""
        default_repository, _, default_tag = default.rpartition(":")
        if "/" in default_tag or not default_repository:  # "host:5000/repo" has no tag
            default_repository, default_tag = default, "latest"
        repository = self.repository or default_repository
        if self.digest_hash:
            return f"{repository}@{self.digest_hash}"
        return f"{repository}:{self.version_tag or default_tag}"


class Condition(ApiModel):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class ObjectMeta(BaseModel):
    """The part of metav1.ObjectMeta the operator reads (the rest is ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="ignore"
    )

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
