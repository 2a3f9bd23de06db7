"""Who may call what on the REST API, who is an ACL user of which database, and the password forms
(scrypt for the API, sealed SHA-256 for the shards)."""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recluster.api.access import MANAGEMENT_LEVELS
from recluster.node.access import database_users, may_call, sees_secrets
from recluster.node.acl_secrets import AclSecrets
from recluster.node.auth import CredentialCheck, acl_password, hash_password, verify_password
from recluster.node.records import BdbRecord, ClusterRecord, ClusterState
from recluster.node.users import RolePermission, RoleRecord, UserRecord, management_of

pytestmark = pytest.mark.unit

PATHS = [
    "/v1/bdbs",
    "/v1/bdbs/1",
    "/v1/shards/3/actions/failover",
    "/v1/nodes/1/actions/remove",
    "/v1/cluster",
    "/v1/users",
    "/v1/users/4",
    "/v1/roles",
    "/v1/redis_acls",
    "/v1/license",
]


@given(
    st.sampled_from(MANAGEMENT_LEVELS),
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.sampled_from(PATHS),
)
def test_each_level_may_call_only_what_it_is_given(level: str, method: str, path: str) -> None:
    allowed = may_call(level, method, path)
    if level == "admin":
        assert allowed
    elif level == "none":
        assert not allowed
    elif method == "GET":
        assert allowed == (not path.startswith(("/v1/users", "/v1/roles")))
    else:  # members change databases (and fail them over), nothing else
        assert allowed == (
            level in ("db_member", "cluster_member") and path.startswith(("/v1/bdbs", "/v1/shards/"))
        )


def test_every_user_may_change_its_own_password_and_only_members_see_database_passwords() -> None:
    assert all(may_call(level, "PUT", "/v1/users/password") for level in MANAGEMENT_LEVELS)
    assert [lvl for lvl in MANAGEMENT_LEVELS if sees_secrets(lvl)] == ["db_member", "cluster_member", "admin"]


def state_with(
    users: list[UserRecord], roles: list[RoleRecord], permissions: list[RolePermission]
) -> tuple[ClusterState, BdbRecord]:
    state = ClusterState(
        cluster=ClusterRecord(name="c", created_time="", username="admin@c", password_hash="")
    )
    state.users = {u.uid: u for u in users}
    state.roles = {r.uid: r for r in roles}
    bdb = BdbRecord(
        uid=1,
        name="db",
        memory_size=1,
        port=10001,
        replication=False,
        data_persistence="disabled",
        aof_policy="appendfsync-every-sec",
        snapshot_policy=[],
        eviction_policy="noeviction",
        roles_permissions=permissions,
    )
    state.bdbs[1] = bdb
    return state, bdb


def user(uid: int, name: str, roles: list[int]) -> UserRecord:
    return UserRecord(uid=uid, name=name, password_hash="x", acl_password=f"sealed-{name}", role_uids=roles)


def test_database_users_are_the_users_whose_roles_have_an_acl_on_it_with_their_roles_as_selectors() -> None:
    roles = [
        RoleRecord(uid=1, name="r", management="none"),
        RoleRecord(uid=2, name="w", management="db_member"),
        RoleRecord(uid=3, name="x", management="admin"),
    ]
    state, bdb = state_with(
        [user(1, "zed", [1, 2]), user(2, "amy", [1]), user(3, "nobody", [3]), user(4, "ghost", [9])],
        roles,
        [
            RolePermission(role_uid=1, redis_acl_uid=2),
            RolePermission(role_uid=2, redis_acl_uid=1),
            RolePermission(role_uid=7, redis_acl_uid=1),
        ],
    )  # role 7 does not exist: no one gets it
    found = database_users(state, bdb)
    assert [u.name for u in found] == ["amy", "zed"]
    assert found[0].permissions == ("+@read", "~*")
    assert found[1].permissions == ("+@read", "~*", "(+@all ~*)")
    assert found[1].sealed_password == "sealed-zed"


def test_a_users_level_is_its_strongest_role() -> None:
    roles = {
        1: RoleRecord(uid=1, name="v", management="db_viewer"),
        2: RoleRecord(uid=2, name="m", management="cluster_member"),
    }
    assert management_of(user(1, "u", [1, 2]), roles) == "cluster_member"
    assert management_of(user(1, "u", []), roles) == "none"
    assert (
        management_of(UserRecord(uid=1, name="u", password_hash="", acl_password="", role="admin"), roles)
        == "admin"
    )


@settings(max_examples=5, deadline=None)  # scrypt costs ~50 ms
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_a_password_verifies_against_its_salted_hash_only(password: str, other: str) -> None:
    stored = hash_password(password)
    assert stored.startswith("scrypt$")
    assert verify_password(password, stored)
    assert verify_password(other, stored) == (other == password)
    assert hash_password(password) != stored  # salted


def test_an_older_pbkdf2_hash_still_verifies() -> None:
    salt = "00" * 16
    digest = hashlib.pbkdf2_hmac("sha256", b"old-secret", salt.encode(), 100_000).hex()
    stored = f"pbkdf2-sha256$100000${salt}${digest}"
    assert verify_password("old-secret", stored) and not verify_password("other", stored)
    assert not verify_password("old-secret", "garbage") and not verify_password("x", "scrypt$a$b$c$d$e")


@given(st.text(min_size=1, max_size=30))
def test_the_acl_password_is_sealed_with_the_cluster_secret(password: str) -> None:
    secrets = AclSecrets("cluster-secret")
    sealed = secrets.seal(acl_password(password))
    assert acl_password(password) not in sealed
    assert secrets.open(sealed) == hashlib.sha256(password.encode()).hexdigest()
    assert AclSecrets("another-cluster").open(sealed) is None
    assert secrets.open(sealed[:-4] + "AAAA") is None and secrets.open("not base64!") is None


async def test_the_credential_check_names_the_callers_level() -> None:
    roles = [RoleRecord(uid=1, name="v", management="db_viewer")]
    state, _ = state_with(
        [
            UserRecord(
                uid=1,
                name="amy",
                email="amy@x.org",
                password_hash=hash_password("amy-pw"),
                acl_password="",
                role_uids=[1],
            )
        ],
        roles,
        [],
    )
    state.cluster.password_hash = hash_password("admin-pw")
    check = CredentialCheck()
    assert await check.management("admin@c", "admin-pw", state) == "admin"
    assert await check.management("amy", "amy-pw", state) == "db_viewer"
    assert await check.management("amy@x.org", "amy-pw", state) == "db_viewer"
    assert await check.management("amy", "admin-pw", state) is None
    assert await check.management("", "amy-pw", state) is None
    assert await check.management("nobody", "amy-pw", state) is None


async def test_the_admins_previous_password_logs_in_only_during_the_switch_over() -> None:
    state, _ = state_with([], [], [])
    state.cluster.password_hash = hash_password("new-admin-pw")
    state.cluster.previous_password_hash = hash_password("old-admin-pw")
    state.cluster.previous_password_until = time.time() + 60
    check = CredentialCheck()
    assert await check.management("admin@c", "new-admin-pw", state) == "admin"
    assert await check.management("admin@c", "old-admin-pw", state) == "admin"
    state.cluster.previous_password_until = time.time() - 1
    assert await check.management("admin@c", "old-admin-pw", state) is None
    assert await check.management("admin@c", "new-admin-pw", state) == "admin"
