"""The leader loop: on the node whose CCS is master, turn what Sentinel and the shards report
(recluster.node.observe) into the cluster state (recluster.node.reconcile decides), write it with a
majority's acknowledgement, and request the planned failovers the plan asks for, only while a
majority confirms this leader."""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import time

from redis.exceptions import RedisError

from recluster.node.admin_credentials import AdminCredentialsWatch
from recluster.node.backup_runs import ScheduledBackups
from recluster.node.ca_rotation import apply_step, next_step
from recluster.node.ccs import CcsStore
from recluster.node.database_tls import new_ca
from recluster.node.engine_upgrade import advance as advance_upgrades
from recluster.node.login_migration import (
    give_job_users,
    has_job_users,
    needing_job_users,
    switch_logins,
    waiting_to_switch,
)
from recluster.node.loops import one_pass, wait_or_wake
from recluster.node.observe import Observer
from recluster.node.reconcile import (
    apply_plan,
    bdb_status,
    min_replicas,
    plan_repair,
    progress_removals,
    settled,
    sync_roles,
    sync_status,
)
from recluster.node.records import BdbRecord, ClusterState
from recluster.node.runtime import NodeRuntime
from recluster.node.sentinel import CCS_NAME

log = logging.getLogger(__name__)

FAILOVER_RETRY_S = 15.0
# an engine upgrade asks its failover only once an upgraded replica is in sync; Sentinel may still
# answer NOGOODSLAVE for a second or two after the replica's restart (it reads INFO every second)
UPGRADE_FAILOVER_RETRY_S = 3.0


class LeaderLoop:
    def __init__(self, rt: NodeRuntime) -> None:
        self.rt = rt
        self.cfg = rt.cfg
        self.observer = Observer(rt)
        self._settled = False  # the last pass found nothing to follow closely
        self._unconfirmed_logged = -FAILOVER_RETRY_S  # when a failover held for want of a majority was logged
        self._failover_requested: dict[str, float] = {}
        self.admin_credentials = AdminCredentialsWatch(rt.cfg.credentials_file)
        self.backups = ScheduledBackups(rt)

    def cancel(self) -> None:
        self.observer.cancel()
        self.backups.cancel()

    async def run(self) -> None:
        async def lead() -> None:
            self._settled = False  # a node that becomes the leader looks at once
            member = self.rt.member()
            if member is not None and await member[1].is_master():
                await self.tick()

        while True:
            await one_pass("leader loop", lead)
            await wait_or_wake(self.rt.wake, self.cfg.settled_tick_s if self._settled else self.cfg.tick_s)

    async def tick(self) -> None:
        member = self.rt.member()
        assert member is not None
        membership, store = member
        state = await store.read_local()
        if state is None:
            return
        if not state.cluster.database_ca_cert:
            await self._create_database_ca(store, state)
            return
        if next_step(state.cluster, time.time()) is not None:
            await self._rotation_step(store)
            return
        await self.admin_credentials.follow(store, state)
        if await self._move_logins(store, state):
            return
        obs = await self.observer.observe(store, state)
        me = membership.node_uid

        def change(st: ClusterState) -> tuple[list[str], list[int], bool, list[int], list[int]]:
            before = {s.uid: s.min_replicas_to_write for s in st.shards.values()}
            changes = sync_roles(st, obs) + sync_status(st, obs) + min_replicas(st, obs) + bdb_status(st, obs)
            upgrade_changes, upgrade_failovers = advance_upgrades(st, obs)
            changes += upgrade_changes
            plan = plan_repair(st, obs)
            changes += apply_plan(st, plan)
            removal_changes, handover = progress_removals(st, me)
            changes += removal_changes
            lowered = [s.uid for s in st.shards.values()
                       if s.min_replicas_to_write < before.get(s.uid, 0)]
            return changes, plan.failover, handover, lowered, upgrade_failovers

        # a copy to try the change on; a JSON round trip (pydantic's Rust) is 4x a deep copy's speed,
        # and this runs every leader pass on the event loop the REST API shares
        trial = ClusterState.model_validate_json(state.model_dump_json())
        changes, failovers, handover, _, upgrades = change(trial)
        self._settled = not (changes or failovers or handover or upgrades) and settled(state, obs)
        if changes:
            changes, failovers, handover, lowered, upgrades = await store.write(change,
                                                                                "record observed state")
            for line in changes:
                log.info("leader: %s", line)
            await self._lower_min_replicas(store, lowered)
        state = store.last_state or state
        await self.backups.start_due(store, state)  # in the background: never holds this pass
        if (failovers or handover or upgrades) and not await store.confirm_majority(len(state.nodes)):
            now = time.monotonic()
            if now - self._unconfirmed_logged < FAILOVER_RETRY_S:
                return
            self._unconfirmed_logged = now
            log.warning("leader: not requesting the planned failover of %s: a majority of the nodes does "
                        "not confirm this leader now (cut off from them?)",
                        ", ".join([state.bdbs[u].name for u in failovers + upgrades if u in state.bdbs]
                                  + ([CCS_NAME] if handover else [])))
            return
        for bdb_uid in failovers:
            failing = state.bdbs.get(bdb_uid)
            if failing is not None:
                await self._request_failover(failing.name)
        for bdb_uid in upgrades:  # an engine upgrade's planned failover (engine_upgrade.py)
            upgraded = state.bdbs.get(bdb_uid)
            if upgraded is not None and await self._still_master(state, upgraded):
                await self._request_failover(upgraded.name, UPGRADE_FAILOVER_RETRY_S)
        if handover:
            await self._request_failover(CCS_NAME)

    async def _move_logins(self, store: CcsStore, state: ClusterState) -> bool:
        """Databases made before the per-job logins move to them (login_migration); True when the
        state was changed (the next pass reads it)."""
        older = needing_job_users(state)
        if older:
            passwords = {uid: secrets.token_urlsafe(32) for uid in older}
            for line in await store.write(lambda st: give_job_users(st, passwords),
                                          "add the per-job users to older databases"):
                log.info("leader: %s", line)
            return True
        changed = False
        for bdb in waiting_to_switch(state):
            if await self._job_users_everywhere(state, bdb):
                for line in await store.write(functools.partial(switch_logins, uid=bdb.uid),
                                              f"move the logins of database {bdb.name}"):
                    log.info("leader: %s", line)
                changed = True
        return changed

    async def _job_users_everywhere(self, state: ClusterState, bdb: BdbRecord) -> bool:
        """Every shard of `bdb` answers and lists the job users (asked with its current login)."""
        shards = state.shards_of(bdb.uid)
        for shard in shards:
            node = state.nodes.get(shard.node_uid)
            if node is None:
                return False
            try:
                users = await self.rt.probes.shard(node.addr, bdb).acl_users()
            except (RedisError, OSError):
                return False
            if not has_job_users([str(name) for name in users]):
                return False
        return bool(shards)

    @staticmethod
    async def _create_database_ca(store: CcsStore, state: ClusterState) -> None:
        """A cluster made before database TLS gets its CA (a new cluster has it from the start)."""
        ca = new_ca(state.cluster.name)

        def add(st: ClusterState) -> None:
            if not st.cluster.database_ca_cert:
                st.cluster.database_ca_cert, st.cluster.database_ca_key = ca.certificate, ca.key

        await store.write(add, "create the cluster's database CA")
        log.info("leader: created the cluster's database CA")

    @staticmethod
    async def _rotation_step(store: CcsStore) -> None:
        """The next step of a database CA rotation (node/ca_rotation.py), decided on the state written."""
        now = time.time()

        def step(st: ClusterState) -> str | None:
            decided = next_step(st.cluster, now)
            return apply_step(st.cluster, decided, now) if decided else None

        done = await store.write(step, "a database CA rotation step")
        if done:
            log.info("leader: %s", done)

    async def _lower_min_replicas(self, store: CcsStore, shard_uids: list[int]) -> None:
        """Apply a lowered min-replicas-to-write at once (the owning node would within a tick) so a
        database whose replica died is writable again as soon as the majority decided it."""
        state = store.last_state
        if state is None:
            return
        for uid in shard_uids:
            shard = state.shards.get(uid)
            if shard is None:
                continue
            bdb, node = state.bdbs.get(shard.bdb_uid), state.nodes.get(shard.node_uid)
            if bdb is None or node is None:
                continue
            with contextlib.suppress(RedisError, OSError):
                await self.rt.probes.shard(node.addr, bdb).config_set(
                    "min-replicas-to-write", shard.min_replicas_to_write)

    async def _still_master(self, state: ClusterState, bdb: BdbRecord) -> bool:
        """Sentinel still names the master the state records (read now, after the write): a failover
        that finished since this pass observed must not be asked again, which would move the master
        back to the old engine."""
        master = next((s for s in state.shards_of(bdb.uid) if s.role == "master"), None)
        node = state.nodes.get(master.node_uid) if master is not None else None
        named = (await self.rt.sentinel.masters(max_age=0)).get(bdb.name) or {}
        return node is not None and named.get("ip") in (node.addr, node.name) \
            and str(named.get("port")) == str(bdb.port)

    async def _request_failover(self, name: str, retry_s: float = FAILOVER_RETRY_S) -> None:
        now = time.monotonic()
        if now - self._failover_requested.get(name, 0) < retry_s:
            return
        self._failover_requested[name] = now
        try:
            await self.rt.sentinel.failover(name)
            log.info("leader: planned failover of %s requested", name)
        except RedisError as exc:
            log.info("leader: failover of %s not possible yet: %s", name, exc)
