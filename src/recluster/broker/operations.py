"""The asynchronous worker: runs provision, update and deprovision operations against the cluster's
REST API and records their outcome. Every step is safe to repeat (the database is found by its
name, updates are absolute, a delete of a missing database is done, the bindings' users are found
by their names), so the operations still 'in progress' when the broker stopped are simply run again
at start, and so are the unbinds it was in the middle of."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from typing import Any

import httpx

from recluster.broker.catalog import Catalog, bdb_settings
from recluster.broker.grants import RETRYABLE_STATUS, GrantError, Grants, api_reason
from recluster.broker.models import Binding, Instance, Operation
from recluster.broker.store import Store
from recluster.clients.cluster_api import ClusterApi, ClusterApiError

log = logging.getLogger("recluster.broker")


class OperationFailed(Exception):
    """The operation cannot succeed; the message is shown to the user (no secrets)."""


class Worker:
    def __init__(self, store: Store, api: ClusterApi, catalog: Catalog, grants: Grants, *,
                 timeout_s: float = 600.0, poll_s: float = 0.5) -> None:
        self.store = store
        self.api = api
        self.catalog = catalog
        self.grants = grants
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # ---- life cycle ------------------------------------------------------------------------

    def start(self, operation: Operation) -> None:
        if operation.id in self._tasks and not self._tasks[operation.id].done():
            return
        task = asyncio.get_running_loop().create_task(self._run(operation), name=f"osb-{operation.id}")
        self._tasks[operation.id] = task
        task.add_done_callback(functools.partial(self._forget, operation.id))

    def _forget(self, operation_id: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(operation_id, None)

    def resume(self) -> int:
        """Start every operation left 'in progress' (the broker stopped during it), and finish the
        unbinds it stopped in the middle of."""
        pending = self.store.unfinished_operations()
        for operation in pending:
            log.info("resuming %s of instance %s (operation %s)", operation.kind, operation.instance_id,
                     operation.id)
            self.start(operation)
        unbinds = self.store.bindings_in_state("deleting")
        if unbinds:
            task = asyncio.get_running_loop().create_task(self._finish_unbinds(unbinds), name="osb-unbinds")
            self._tasks["unbinds"] = task
            task.add_done_callback(functools.partial(self._forget, "unbinds"))
        return len(pending) + len(unbinds)

    async def _finish_unbinds(self, bindings: list[Binding]) -> None:
        for binding in bindings:
            log.info("resuming the unbind of binding %s of instance %s", binding.id, binding.instance_id)
            try:
                async with self.grants.lock(binding.instance_id):
                    await self.grants.revoke(self.store.instance(binding.instance_id), [binding],
                                             time.time() + self.timeout_s)
                    self.store.save(delete_binding=(binding.instance_id, binding.id))
            except GrantError as exc:  # the platform's repeat of the unbind, or the next start, tries again
                log.warning("unbind of binding %s of instance %s failed: %s", binding.id, binding.instance_id,
                            exc)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def running(self) -> int:
        return len(self._tasks)

    # ---- one operation ---------------------------------------------------------------------

    async def _run(self, operation: Operation) -> None:
        deadline = operation.started + self.timeout_s
        log.info("%s of instance %s started (operation %s, by %s)", operation.kind, operation.instance_id,
                 operation.id, operation.originating_identity or "unknown")
        try:
            if operation.kind == "provision":
                await self._provision(operation, deadline)
            elif operation.kind == "update":
                await self._update(operation, deadline)
            else:
                await self._deprovision(operation, deadline)
        except asyncio.CancelledError:
            raise  # the broker is stopping: the operation stays 'in progress' and resumes at start
        except (OperationFailed, TimeoutError) as exc:
            self._fail(operation, str(exc))
        except Exception as exc:  # a bug must not leave the operation 'in progress' forever
            log.exception("operation %s failed unexpectedly", operation.id)
            self._fail(operation, f"internal error: {type(exc).__name__}")
        else:
            log.info("%s of instance %s succeeded (operation %s)", operation.kind, operation.instance_id,
                     operation.id)

    def _instance(self, operation: Operation) -> Instance:
        instance = self.store.instance(operation.instance_id)
        if instance is None:
            raise OperationFailed("the service instance record is missing")
        return instance

    def _finish(self, operation: Operation, instance: Instance, description: str, *,
                delete_bindings: bool = False) -> None:
        done = operation.model_copy(update={"state": "succeeded", "description": description,
                                            "finished": time.time()})
        self.store.save(instance=instance, operation=done,
                        delete_bindings_of=instance.id if delete_bindings else None)

    def _fail(self, operation: Operation, reason: str) -> None:
        log.warning("%s of instance %s failed: %s", operation.kind, operation.instance_id, reason)
        instance = self.store.instance(operation.instance_id)
        if instance is not None:
            if operation.kind == "provision":
                instance = instance.model_copy(update={"state": "failed"})
            else:  # an update or delete that failed leaves the database as it was
                instance = instance.model_copy(update={"state": operation.previous_state or "provisioned"})
        failed = operation.model_copy(update={"state": "failed", "description": f"{operation.kind} failed: "
                                              f"{reason}", "finished": time.time()})
        self.store.save(instance=instance, operation=failed)

    # ---- the three kinds ---------------------------------------------------------------------

    async def _provision(self, operation: Operation, deadline: float) -> None:
        instance = self._instance(operation)
        plan = self.catalog.plan(instance.plan_id)
        if plan is None:
            raise OperationFailed(f"plan '{instance.plan_id}' is no longer in the catalog")
        bdb = await self._find(instance, deadline)
        if bdb is not None and bdb.get("status") == "creation-failed":
            # left by an earlier failed attempt: delete it and create it afresh
            await self._delete(int(bdb["uid"]), deadline)
            bdb = None
        if bdb is None:
            spec: dict[str, Any] = {"name": instance.bdb_name, **bdb_settings(plan, instance.parameters),
                                    # the database's password; the REST API keeps it, the broker never does
                                    "authentication_redis_pass": secrets.token_urlsafe(24)}
            try:
                bdb = await self._call(deadline, self.api.create_bdb, spec)
            except ClusterApiError as exc:
                if exc.status == 409 and exc.error_code == "name_exists":
                    bdb = await self._find(instance, deadline)  # an earlier attempt created it
                else:
                    raise OperationFailed(api_reason(exc)) from exc
            if bdb is None:
                raise OperationFailed("the database was created but cannot be found")
        uid = int(bdb["uid"])
        instance = instance.model_copy(update={"bdb_uid": uid})
        self.store.save(instance=instance)
        await self._wait_status(uid, "active", deadline, operation)
        self._finish(operation, instance.model_copy(update={"state": "provisioned"}),
                     f"database '{instance.bdb_name}' is active")

    async def _update(self, operation: Operation, deadline: float) -> None:
        instance = self._instance(operation)
        plan = self.catalog.plan(operation.target_plan_id or instance.plan_id)
        if plan is None:
            raise OperationFailed("the target plan is no longer in the catalog")
        bdb = await self._find(instance, deadline)
        if bdb is None:
            raise OperationFailed(f"database '{instance.bdb_name}' no longer exists on the cluster")
        uid = int(bdb["uid"])
        changes = bdb_settings(plan, operation.target_parameters)
        try:
            # absolute values: a repeat after a restart changes nothing more
            await self._call(deadline, self.api.update_bdb, uid, changes)
        except ClusterApiError as exc:
            raise OperationFailed(api_reason(exc)) from exc
        await self._wait_status(uid, "active", deadline, operation)
        updated = instance.model_copy(update={"plan_id": plan.id, "state": "provisioned", "bdb_uid": uid,
                                              "parameters": operation.target_parameters or {}})
        # the bindings' users get the new plan's Redis ACL; a bind waits, then sees the new plan
        async with self.grants.lock(instance.id):
            bindings = [b for b in self.store.bindings_of(instance.id)
                        if b.has_user and b.state != "deleting"]
            try:
                await self.grants.repoint(updated, bindings, plan.redis_acl, deadline)
            except GrantError as exc:
                raise OperationFailed(f"the bindings keep the old plan's Redis ACL: {exc}") from exc
            self._finish(operation, updated, f"database '{instance.bdb_name}' now has plan '{plan.name}'")

    async def _deprovision(self, operation: Operation, deadline: float) -> None:
        instance = self._instance(operation)
        # the bindings' users first (their connections close), then the database. No bind starts
        # meanwhile: the instance is 'deprovisioning'
        async with self.grants.lock(instance.id):
            bindings = self.store.bindings_of(instance.id)
            if any(b.has_user for b in bindings):
                self._progress(operation, f"removing the users of {len(bindings)} binding(s)")
                try:
                    await self.grants.revoke(instance, bindings, deadline)
                except GrantError as exc:
                    raise OperationFailed(f"the bindings' users cannot be removed: {exc}") from exc
        bdb = await self._find(instance, deadline)
        if bdb is not None:
            await self._delete(int(bdb["uid"]), deadline, operation)
        self._finish(operation, instance.model_copy(update={"state": "deleted"}),
                     f"database '{instance.bdb_name}' is deleted", delete_bindings=True)
        self.grants.forget(instance.id)

    # ---- REST helpers ---------------------------------------------------------------------

    async def _delete(self, uid: int, deadline: float, operation: Operation | None = None) -> None:
        """Delete a database and wait until it is gone (a 404 is done; busy is retried)."""
        try:
            await self._call(deadline, self.api.delete_bdb, uid)
        except ClusterApiError as exc:
            if exc.status != 404:
                raise OperationFailed(api_reason(exc)) from exc
        await self._wait_status(uid, "deleted", deadline, operation)

    async def _find(self, instance: Instance, deadline: float) -> dict[str, Any] | None:
        """The instance's database, by uid if known, else by its (unique) name."""
        bdbs: list[dict[str, Any]] = await self._call(deadline, self.api.bdbs)
        for bdb in bdbs:
            if bdb.get("name") == instance.bdb_name:
                return bdb
        return None

    async def _call(self, deadline: float, method: Any, *args: Any) -> Any:
        """A REST call, retried while the cluster is busy or unreachable, until the deadline."""
        while True:
            try:
                return await method(*args)
            except ClusterApiError as exc:
                if exc.status not in RETRYABLE_STATUS or exc.error_code == "name_exists":
                    raise
                reason = api_reason(exc)
            except httpx.HTTPError as exc:
                reason = f"cluster API unreachable ({type(exc).__name__})"
            if time.time() + self.poll_s > deadline:
                raise TimeoutError(f"gave up after {self.timeout_s:.0f}s: {reason}")
            await asyncio.sleep(self.poll_s)

    def _progress(self, operation: Operation, text: str) -> None:
        """What the worker waits for, shown by last_operation while the state is 'in progress'."""
        current = self.store.operation(operation.id)
        if current is not None and current.state == "in progress" and current.description != text:
            self.store.save(operation=current.model_copy(update={"description": text}))

    async def _wait_status(self, uid: int, status: str, deadline: float,
                           operation: Operation | None = None) -> None:
        last = "unknown"
        while True:
            try:
                bdb = await self.api.bdb(uid)
                last = str(bdb.get("status"))
                if operation is not None and last != status:
                    self._progress(operation, f"database '{bdb.get('name')}' (uid {uid}) is '{last}', "
                                   f"waiting for '{status}'")
                if last == status:
                    return
                if last == "creation-failed":
                    raise OperationFailed("the cluster could not create the database (creation-failed)")
            except ClusterApiError as exc:
                if exc.status == 404 and status == "deleted":
                    return
                if exc.status == 404:
                    raise OperationFailed(f"database {uid} disappeared from the cluster") from exc
                last = f"unreadable ({exc.error_code or exc.status})"
            except httpx.HTTPError as exc:
                last = f"cluster API unreachable ({type(exc).__name__})"
            if time.time() + self.poll_s > deadline:
                raise TimeoutError(f"database {uid} not '{status}' after {self.timeout_s:.0f}s "
                                   f"(last: {last})")
            await asyncio.sleep(self.poll_s)
