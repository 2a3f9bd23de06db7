"""Request bodies (as the spec defines them; unknown fields are vendor extensions and ignored) and
the records the broker keeps (instances, bindings, operations). Pure."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Field(min_length=1)

InstanceState = Literal["provisioning", "provisioned", "updating", "deprovisioning", "failed", "deleted"]
OperationKind = Literal["provision", "update", "deprovision"]
OperationState = Literal["in progress", "succeeded", "failed"]
# creating: recorded, its user being made on the cluster (a repeat of the bind finishes it);
# created: answered with its credentials; deleting: its user being removed (a repeat of the unbind,
# or the broker's next start, finishes it)
BindingState = Literal["creating", "created", "deleting"]


class _Request(BaseModel):
    # The spec: receivers MUST ignore unknown extension fields.
    model_config = ConfigDict(extra="ignore", strict=True)


class MaintenanceInfo(_Request):
    version: str = Field(min_length=1)
    description: str | None = None


class ProvisionRequest(_Request):
    service_id: str = NonEmpty
    plan_id: str = NonEmpty
    context: dict[str, Any] | None = None
    organization_guid: str = NonEmpty
    space_guid: str = NonEmpty
    parameters: dict[str, Any] | None = None
    maintenance_info: MaintenanceInfo | None = None


class PreviousValues(_Request):
    model_config = ConfigDict(extra="ignore", strict=False)
    service_id: str | None = None
    plan_id: str | None = None
    organization_id: str | None = None
    space_id: str | None = None


class UpdateRequest(_Request):
    service_id: str = NonEmpty
    plan_id: str | None = Field(default=None, min_length=1)
    context: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    previous_values: PreviousValues | None = None
    maintenance_info: MaintenanceInfo | None = None


class BindResource(_Request):
    model_config = ConfigDict(extra="allow", strict=True)
    app_guid: str | None = Field(default=None, min_length=1)
    route: str | None = Field(default=None, min_length=1)


class BindRequest(_Request):
    service_id: str = NonEmpty
    plan_id: str = NonEmpty
    context: dict[str, Any] | None = None
    app_guid: str | None = Field(default=None, min_length=1)
    bind_resource: BindResource | None = None
    parameters: dict[str, Any] | None = None
    predecessor_binding_id: str | None = Field(default=None, min_length=1)


class Instance(BaseModel):
    id: str
    service_id: str
    plan_id: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    organization_guid: str = ""
    space_guid: str = ""
    bdb_name: str
    bdb_uid: int | None = None
    state: InstanceState = "provisioning"
    created: str = ""


class Binding(BaseModel):
    instance_id: str
    id: str
    service_id: str
    plan_id: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    app_guid: str | None = None
    bind_resource: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    state: BindingState = "created"
    # the binding's own user on the cluster (name = its role's name). The cluster keeps only hashes
    # of the password, and a platform may fetch the binding again, so the broker keeps it. None: a
    # binding made before bindings had users (it carries the database password)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)

    @property
    def has_user(self) -> bool:
        return self.username is not None


class Operation(BaseModel):
    id: str
    instance_id: str
    kind: OperationKind
    state: OperationState = "in progress"
    description: str = ""
    # what the operation is to reach: the target plan and parameters (update), nothing else
    target_plan_id: str | None = None
    target_parameters: dict[str, Any] | None = None
    previous_state: InstanceState | None = None
    originating_identity: str = ""  # "platform user-id-or-summary", for audit; never a secret
    started: float = 0.0
    finished: float | None = None
