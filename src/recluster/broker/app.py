"""The broker's HTTP API (FastAPI). Handlers are thin: check auth and the API version, parse the
body, load the records, let `decisions` pick the answer, write it, start the worker."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from recluster.broker import errors
from recluster.broker.binding_credentials import (
    ServiceNaming,
    binding_endpoints,
    credentials_for,
    shard_hosts,
)
from recluster.broker.catalog import Catalog
from recluster.broker.decisions import (
    Decision,
    check_grantable,
    decide_bind,
    decide_deprovision,
    decide_fetch_binding,
    decide_fetch_instance,
    decide_last_operation,
    decide_provision,
    decide_unbind,
    decide_update,
)
from recluster.broker.errors import BrokerError
from recluster.broker.grants import GrantError, Grants
from recluster.broker.models import Binding, BindRequest, Instance, ProvisionRequest, UpdateRequest
from recluster.broker.operations import Worker
from recluster.broker.request_headers import check_api_version, parse_originating_identity
from recluster.broker.store import Store
from recluster.clients.cluster_api import ClusterApi, ClusterApiError, CredentialFiles
from recluster.http_auth import parse_basic
from recluster.http_limits import RequestLimits, json_problem, loads

log = logging.getLogger("recluster.broker")
M = TypeVar("M", bound=BaseModel)
REQUEST_IDENTITY = "X-Broker-API-Request-Identity"
RETRY_AFTER_S = 2
BINDING_PASSWORD_BYTES = 24  # token_urlsafe: 32 characters of A-Z a-z 0-9 - _


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password
        return f"BasicCredentials(username={self.username!r}, password=<redacted>)"

    def matches(self, username: str, password: str) -> bool:
        # both compared, in constant time, so a wrong username takes as long as a wrong password
        user_ok = secrets.compare_digest(username.encode(), self.username.encode())
        password_ok = secrets.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok


@dataclass(frozen=True)
class BrokerSettings:
    catalog: Catalog
    data_dir: Path
    api_url: str
    api_credentials: BasicCredentials
    auth: BasicCredentials
    # where api_credentials were read: read again for every REST call, so a rotated admin password
    # (the REC Secret, remounted) is followed within the cluster's switch-over without a restart
    api_credentials_dir: Path | None = None
    api_verify: bool | str = False
    services: ServiceNaming = field(default_factory=ServiceNaming)
    operation_timeout_s: float = 600.0
    # how long a bind or unbind keeps retrying a busy or unreachable cluster (platforms wait ~60 s)
    binding_timeout_s: float = 30.0
    poll_s: float = 0.5


class Broker:
    """What the handlers share: created at start-up, kept in app.state."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.catalog = settings.catalog
        self.store = Store(settings.data_dir)
        # a CA file becomes an SSL context (httpx deprecates a path); False: the nodes' self-signed cert
        verify: Any = (ssl.create_default_context(cafile=settings.api_verify)
                       if isinstance(settings.api_verify, str) else settings.api_verify)
        files = CredentialFiles(settings.api_credentials_dir) if settings.api_credentials_dir else None
        self.api = ClusterApi(settings.api_url, settings.api_credentials.username,
                              settings.api_credentials.password, timeout=20.0, verify=verify,
                              credentials=files)
        self.grants = Grants(self.api, poll_s=settings.poll_s)
        self.worker = Worker(self.store, self.api, self.catalog, self.grants,
                             timeout_s=settings.operation_timeout_s, poll_s=settings.poll_s)

    def apply(self, decision: Decision) -> JSONResponse:
        """Write what the decision asks for (one transaction), start its operation, answer."""
        if decision.instance or decision.operation or decision.binding:
            self.store.save(instance=decision.instance, operation=decision.operation,
                            binding=decision.binding)
        if decision.operation is not None:
            self.worker.start(decision.operation)
        return JSONResponse(decision.body, status_code=decision.status)

    async def answer(self, instance: Instance, binding: Binding) -> dict[str, Any]:
        """`credentials` and `endpoints` of a binding: its user, and the database's addresses read
        from the cluster."""
        try:
            uid = instance.bdb_uid
            if uid is None:
                found = [b for b in await self.api.bdbs() if b.get("name") == instance.bdb_name]
                if not found:
                    raise errors.BrokerError(503, "the instance's database is not on the cluster")
                uid = int(found[0]["uid"])
            bdb = await self.api.bdb(uid)
            nodes = await self.api.nodes()
            shards = await self.api.shards(uid)
            ca = str((await self.api.certificates()).get("proxy_cert") or "") \
                if bdb.get("tls_mode") == "enabled" else ""
        except ClusterApiError as exc:
            raise errors.BrokerError(503, f"cannot read the database from the cluster API "
                                     f"({exc.status} {exc.error_code})") from exc
        except httpx.HTTPError as exc:
            raise errors.BrokerError(503, f"the cluster API is unreachable ({type(exc).__name__})") from exc
        credentials = credentials_for(bdb, nodes, binding, self.settings.services, ca)
        return {"credentials": credentials,
                "endpoints": binding_endpoints(credentials, shard_hosts(shards, nodes))}

    def deadline(self) -> float:
        return time.time() + self.settings.binding_timeout_s


def grant_failed(exc: GrantError, what: str) -> BrokerError:
    """A bind or unbind the cluster did not let finish: 503 when it was busy or unreachable (a
    repeat may succeed), 502 when it refused; the platform repeats or cleans up (an unbind of the
    binding), and either finishes the job."""
    return BrokerError(503 if exc.retryable else 502, f"{what}: {exc}")


def broker_of(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


def check_request(request: Request) -> None:
    """Every OSB route: Basic auth (401), then the API version header (400 missing, 412 not served)."""
    broker = broker_of(request)
    if not _authenticated(request.headers.get("authorization"), broker.settings.auth):
        raise errors.unauthorized()
    check_api_version(request.headers.get("x-broker-api-version"))


def _authenticated(header: str | None, expected: BasicCredentials) -> bool:
    credentials = parse_basic(header)
    return credentials is not None and expected.matches(*credentials)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if not raw.strip():
        raise errors.bad_request("a JSON request body is required")
    try:
        data = loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {json_problem(exc)}") from exc
    if not isinstance(data, dict):
        raise errors.bad_request("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.from_validation_error(exc) from exc


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _identity(request: Request) -> str:
    return parse_originating_identity(request.headers.get("x-broker-api-originating-identity"))


def _operation_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:16]}"


router = APIRouter(dependencies=[Depends(check_request)])


@router.get("/v2/catalog", response_model=None)
async def get_catalog(request: Request) -> Response:
    # an ETag (spec 2.16+) lets a platform re-fetch the catalog cheaply: 304 when unchanged
    document = broker_of(request).catalog.document()
    etag = '"' + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32] + '"'
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(document, headers={"ETag": etag})


@router.put("/v2/service_instances/{instance_id}")
async def provision(instance_id: str, request: Request,
                    accepts_incomplete: str | None = None) -> JSONResponse:
    broker, identity = broker_of(request), _identity(request)
    body = await parse_body(request, ProvisionRequest)
    decision = decide_provision(broker.catalog, instance_id, body, _flag(accepts_incomplete),
                                broker.store.instance(instance_id),
                                broker.store.current_operation(instance_id), _operation_id("provision"),
                                time.time(), identity)
    return broker.apply(decision)


@router.patch("/v2/service_instances/{instance_id}")
async def update(instance_id: str, request: Request, accepts_incomplete: str | None = None) -> JSONResponse:
    broker, identity = broker_of(request), _identity(request)
    body = await parse_body(request, UpdateRequest)
    decision = decide_update(broker.catalog, instance_id, body, _flag(accepts_incomplete),
                             broker.store.instance(instance_id), broker.store.current_operation(instance_id),
                             _operation_id("update"), time.time(), identity)
    return broker.apply(decision)


@router.delete("/v2/service_instances/{instance_id}")
async def deprovision(instance_id: str, request: Request, service_id: str | None = None,
                      plan_id: str | None = None, accepts_incomplete: str | None = None) -> JSONResponse:
    broker, identity = broker_of(request), _identity(request)
    decision = decide_deprovision(broker.catalog, instance_id, service_id, plan_id, _flag(accepts_incomplete),
                                  broker.store.instance(instance_id),
                                  broker.store.current_operation(instance_id),
                                  _operation_id("deprovision"), time.time(), identity)
    return broker.apply(decision)


@router.get("/v2/service_instances/{instance_id}/last_operation")
async def last_operation(instance_id: str, request: Request, operation: str | None = None) -> JSONResponse:
    broker = broker_of(request)
    decision = decide_last_operation(instance_id, broker.store.instance(instance_id),
                                     broker.store.operations_of(instance_id), operation)
    response = broker.apply(decision)
    if decision.body.get("state") == "in progress":
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


@router.get("/v2/service_instances/{instance_id}")
async def fetch_instance(instance_id: str, request: Request) -> JSONResponse:
    broker = broker_of(request)
    instance = broker.store.instance(instance_id)
    return broker.apply(decide_fetch_instance(instance_id, instance, broker.catalog))


@router.put("/v2/service_instances/{instance_id}/service_bindings/{binding_id}")
async def bind(instance_id: str, binding_id: str, request: Request) -> JSONResponse:
    broker, identity = broker_of(request), _identity(request)
    body = await parse_body(request, BindRequest)
    store = broker.store
    decision = decide_bind(broker.catalog, instance_id, binding_id, body, store.instance(instance_id),
                           store.binding(instance_id, binding_id), time.time(),
                           secrets.token_urlsafe(BINDING_PASSWORD_BYTES))
    if decision.binding is not None:
        # recorded, with its password, before the cluster hears of it (no await since the decision,
        # so a concurrent identical bind finds this record and hands out the same credentials)
        store.save(binding=decision.binding)
    if not decision.grant:  # an identical repeat of a created binding: the same credentials
        binding = store.binding(instance_id, binding_id)
        instance = store.instance(instance_id)
        assert binding is not None and instance is not None
        return JSONResponse(await broker.answer(instance, binding), status_code=decision.status)
    async with broker.grants.lock(instance_id):
        # read again: an unbind, a deprovision or a plan change may have gone first
        instance = store.instance(instance_id)
        binding = check_grantable(instance_id, binding_id, instance, store.binding(instance_id, binding_id))
        assert instance is not None
        plan = broker.catalog.plan(instance.plan_id)
        if plan is None:
            raise errors.unprocessable(f"service instance '{instance_id}' has a plan no longer in the "
                                       "catalog")
        try:
            await broker.grants.grant(instance, binding, plan.redis_acl, broker.deadline())
        except GrantError as exc:
            raise grant_failed(exc, "the binding's user cannot be created") from exc
        answer = await broker.answer(instance, binding)
        store.save(binding=binding.model_copy(update={"state": "created"}))
    log.info("binding %s of instance %s created (by %s)", binding_id, instance_id, identity or "unknown")
    return JSONResponse(answer, status_code=201)


@router.delete("/v2/service_instances/{instance_id}/service_bindings/{binding_id}")
async def unbind(instance_id: str, binding_id: str, request: Request, service_id: str | None = None,
                 plan_id: str | None = None) -> JSONResponse:
    broker, identity = broker_of(request), _identity(request)
    store = broker.store
    decision = decide_unbind(broker.catalog, instance_id, binding_id, service_id, plan_id,
                             store.binding(instance_id, binding_id))
    if decision.binding is not None:
        store.save(binding=decision.binding)  # 'deleting': a repeat, or the next start, finishes it
        async with broker.grants.lock(instance_id):
            try:
                await broker.grants.revoke(store.instance(instance_id), [decision.binding], broker.deadline())
            except GrantError as exc:
                raise grant_failed(exc, "the binding's user cannot be removed") from exc
            store.save(delete_binding=(instance_id, binding_id))
    else:  # a binding made before bindings had users: nothing of its own to remove
        store.save(delete_binding=(instance_id, binding_id))
    log.info("binding %s of instance %s deleted (by %s)", binding_id, instance_id, identity or "unknown")
    return JSONResponse(decision.body, status_code=decision.status)


@router.get("/v2/service_instances/{instance_id}/service_bindings/{binding_id}")
async def fetch_binding(instance_id: str, binding_id: str, request: Request) -> JSONResponse:
    broker = broker_of(request)
    instance = broker.store.instance(instance_id)
    binding = broker.store.binding(instance_id, binding_id)
    decision = decide_fetch_binding(instance_id, binding_id, instance, binding)
    assert instance is not None and binding is not None
    decision.body.update(await broker.answer(instance, binding))
    return JSONResponse(decision.body, status_code=decision.status)


@router.get("/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation")
async def binding_last_operation(instance_id: str, binding_id: str, request: Request) -> JSONResponse:
    # bindings are synchronous; a platform that asks anyway learns the binding's state (410 is only
    # for asynchronous deletes, which this broker never answers, so an unknown binding is 404)
    broker = broker_of(request)
    binding = broker.store.binding(instance_id, binding_id)
    if binding is None or binding.state != "created":
        raise errors.not_found(f"service binding '{binding_id}' does not exist")
    return JSONResponse({"state": "succeeded", "description": "the binding exists"})


def create_app(settings: BrokerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = Broker(settings)
        app.state.broker = broker
        resumed = broker.worker.resume()
        log.info("broker ready: %d plan(s), %d unfinished operation(s) resumed", len(settings.catalog.plans),
                 resumed)
        try:
            yield
        finally:
            await broker.worker.stop()
            await broker.api.aclose()
            broker.store.close()

    app = FastAPI(title="recluster Open Service Broker", version="2.17", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)

    @app.exception_handler(BrokerError)
    async def broker_error(_request: Request, exc: BrokerError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="recluster-broker"'} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # a JSON error body like every other answer; the details go to the log only
        log.exception("unexpected error: %s", type(exc).__name__)
        return JSONResponse({"description": "internal error in the broker; see its log"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return JSONResponse({"description": f"malformed request: '{field}' is invalid"}, status_code=400)

    @app.middleware("http")
    async def request_identity(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        identity = request.headers.get(REQUEST_IDENTITY)
        if identity:
            response.headers[REQUEST_IDENTITY] = identity
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(RequestLimits)  # outermost of ours: bounds the body before anything reads it
    return app
