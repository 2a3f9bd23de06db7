"""The console in headless Chromium against a real 3-node loopback cluster: log in, see the nodes,
create a database, watch it become active, see keys written by a client, a refused form with the
API's message beside the field, the master's node killed and the roles moving, delete; and users,
roles and a viewer's console.
Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from redis import exceptions as redis_errors
from redis.sentinel import Sentinel

from recluster.node.devcluster import LoopbackCluster

pytestmark = pytest.mark.integration

CONSOLE_PORT = 8443
DB_PASSWORD = "console-test-pass"
VIEWER_PASSWORD = "viewer-password-1"


def console_url(cluster: LoopbackCluster, index: int) -> str:
    return f"https://{cluster.nodes[index].addr}:{CONSOLE_PORT}"


async def log_in(page: Page, cluster: LoopbackCluster, index: int) -> None:
    """From the keyboard only: the username field has the focus, Tab to the password, Enter."""
    await page.goto(console_url(cluster, index) + "/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_label("Username")).to_be_focused()
    await page.keyboard.type(cluster.username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(cluster.password)
    await page.keyboard.press("Enter")
    await expect(page.locator("#ov-nodes")).to_contain_text("3", timeout=30_000)


async def log_in_as(page: Page, base: str, username: str, password: str) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#ov-nodes")).to_contain_text("3", timeout=30_000)


async def test_console_users_roles_and_a_viewer(cluster: LoopbackCluster, browser: Any,
                                                artifacts: Path) -> None:
    """The admin creates a role and a user and gives the role a Redis ACL on a database; the user (a
    db_viewer) reads the databases, is refused the users pages, and changes its own password without
    being logged out. Runs first: the cluster is whole, and nothing of it is left for the next test."""
    base = console_url(cluster, 0)
    async with cluster.api(0) as api:
        bdb = await api.create_bdb({"name": "access-demo", "memory_size": 32 * 1024 * 1024,
                                    "replication": False})
    page: Page = await browser.new_page()
    try:
        await log_in(page, cluster, 0)
        await page.get_by_role("link", name="Roles").click()
        await page.get_by_role("link", name="Create role").click()
        await page.get_by_label("Name").fill("app-viewers")
        await page.get_by_label("Management level").select_option("db_viewer")
        await page.get_by_role("button", name="Create role").click()
        await expect(page.locator('#roles-table tr[data-role="app-viewers"]')).to_contain_text("db_viewer")

        await page.get_by_role("link", name="Users").click()
        await page.get_by_role("link", name="Create user").click()
        await page.get_by_label("Name").fill("viewer1")
        await page.get_by_label("Password").fill("short")
        await page.get_by_label("app-viewers (db_viewer)").check()
        await page.get_by_role("button", name="Create user").click()
        await expect(page.locator("#f-password-error")).to_have_text("the password must be 8-512 characters")
        await page.get_by_label("Password").fill(VIEWER_PASSWORD)
        await page.get_by_role("button", name="Create user").click()
        row = page.locator('#users-table tr[data-user="viewer1"]')
        await expect(row).to_contain_text("app-viewers")
        await expect(row).to_contain_text("db_viewer")

        # the database gives the role a Redis ACL (members and the admin may)
        await api_wait(cluster, bdb["uid"])
        await page.goto(f"{base}/#/databases/{bdb['uid']}/permissions")
        await page.get_by_role("button", name="Add a role").click()
        await page.get_by_label("Role 1").select_option(label="app-viewers")
        await page.get_by_label("Redis ACL 1").select_option(label="Read Only")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#permissions-table")).to_contain_text("Read Only", timeout=30_000)
        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_url(re.compile(r"/login$"))

        # the viewer: databases readable, nothing to change, the users pages refused
        await log_in_as(page, base, "viewer1", VIEWER_PASSWORD)
        await expect(page.locator("#user")).to_have_text("viewer1 (db_viewer)")
        await expect(page.get_by_role("link", name="Users")).to_have_count(0)
        await page.goto(base + "/#/users")
        await expect(page.locator("#access-refused")).to_contain_text("Your role (db_viewer) does not allow")
        await page.get_by_role("link", name="Databases").click()
        await expect(page.locator('#bdbs-table tr[data-bdb="access-demo"]')).to_contain_text("active")
        await expect(page.locator("#read-only")).to_be_visible()
        await expect(page.get_by_role("link", name="Create database")).to_have_count(0)
        await page.get_by_role("link", name="access-demo").click()
        await expect(page.locator("#permissions-table")).to_contain_text("Read Only")
        await expect(page.locator("#edit")).to_have_count(0)
        await expect(page.locator("#delete")).to_have_count(0)
        await page.screenshot(path=str(artifacts / "database-as-viewer.png"), full_page=True)

        # its own password: changed, and the session keeps working (also after a reload)
        await page.get_by_role("link", name="Change password").click()
        await page.get_by_label("Current password").fill(VIEWER_PASSWORD)
        await page.get_by_label("New password", exact=True).fill(VIEWER_PASSWORD + "-new")
        await page.get_by_label("New password again").fill(VIEWER_PASSWORD + "-new")
        await page.get_by_role("button", name="Change password").click()
        done = page.locator("#account-done")
        await expect(done).to_have_text("your password is changed; you stay logged in")
        await page.reload()
        await page.get_by_role("link", name="Databases").click()
        # the REST API checks the new password once (scrypt) for the calls of the first snapshot
        await expect(page.locator('#bdbs-table tr[data-bdb="access-demo"]')).to_be_visible(timeout=20_000)
        await expect(page).not_to_have_url(re.compile(r"/login"))
        assert VIEWER_PASSWORD not in await page.content()
    finally:
        await page.close()
        async with cluster.api(0) as api:  # the next test expects a cluster without these
            for user in await api.objects("users"):
                await api.delete_object("users", user["uid"])
            await api.delete_bdb(bdb["uid"])
            await api.wait_bdb_status(bdb["uid"], "deleted", timeout_s=60)
            for role in await api.objects("roles"):
                await api.delete_object("roles", role["uid"])


async def api_wait(cluster: LoopbackCluster, uid: int) -> None:
    async with cluster.api(0) as api:
        await api.wait_bdb_status(uid, timeout_s=60)


async def test_console_end_to_end(cluster: LoopbackCluster, browser: Any, artifacts: Path) -> None:
    page: Page = await browser.new_page()

    # wrong credentials say so; the session cookie is HttpOnly, Secure, SameSite=Strict
    await page.goto(console_url(cluster, 0) + "/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.get_by_label("Username").fill(cluster.username)
    await page.get_by_label("Password").fill("not-the-password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#login-error")).to_have_text("wrong username or password")
    await log_in(page, cluster, 0)
    cookies = [c for c in await browser.cookies() if c["name"].startswith("__Host-recluster")]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["secure"]
    assert cookies[0]["sameSite"] == "Strict"
    assert cluster.password not in await page.content()

    # three nodes, one of them the leader
    await page.get_by_role("link", name="Nodes").click()
    await expect(page.locator("#nodes-table tbody tr")).to_have_count(3)
    await expect(page.locator("#nodes-table .badge-leader")).to_have_count(1)
    for node in cluster.nodes:
        await expect(page.locator(f'#nodes-table tr[data-node="{node.addr}"]')).to_contain_text("active")
    phone = await browser.new_page()
    await phone.set_viewport_size({"width": 390, "height": 844})
    await phone.goto(console_url(cluster, 0) + "/#/nodes")
    await expect(phone.locator("#nodes-table tbody tr")).to_have_count(3)
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await phone.screenshot(path=str(artifacts / "nodes-phone.png"), full_page=True)
    await phone.close()

    # create a replicated database; it becomes active with its endpoint
    await page.get_by_role("link", name="Databases").click()
    await page.get_by_role("link", name="Create database").click()
    await page.get_by_label("Name").fill("orders")
    await page.get_by_label("Memory limit (MB)").fill("64")
    await page.get_by_label("Password for clients").fill(DB_PASSWORD)
    await page.get_by_role("button", name="Create database").click()
    await expect(page.locator("#title")).to_have_text("Database orders")
    await expect(page.locator("#bdb-status")).to_have_text("active", timeout=120_000)
    await expect(page.locator("#bdb-endpoint")).to_have_text(re.compile(r"^127\.[\d.]+:1\d{4}$"))
    await expect(page.locator("#bdb-sentinel")).to_have_text("orders")
    await expect(page.locator("#shards-table tbody tr")).to_have_count(2)
    await expect(page.locator("#bdb-keys")).to_have_text("0", timeout=30_000)

    # a client writes keys (through Sentinel); the count on the page follows
    sentinel = Sentinel(cluster.sentinels(), socket_timeout=2.0)
    client = sentinel.master_for("orders", password=DB_PASSWORD, socket_timeout=2.0)
    await asyncio.to_thread(lambda: [client.set(f"key:{i}", i) for i in range(250)])
    await expect(page.locator("#bdb-keys")).to_have_text("250", timeout=30_000)
    stop = threading.Event()

    def traffic() -> None:
        """A steady load for the charts, until stopped. Like any client it rides out a failover
        (a busy machine can make Sentinel fail over): NOREPLICAS from a master whose replica was
        just promoted, or a dropped connection, is retried after a pause."""
        while not stop.is_set():
            try:
                client.incr("counter")
            except (redis_errors.ConnectionError, redis_errors.TimeoutError,
                    redis_errors.ResponseError) as exc:
                if isinstance(exc, redis_errors.ResponseError) and not str(exc).startswith("NOREPLICAS"):
                    raise
                stop.wait(0.5)
            time.sleep(0.005)

    load = asyncio.ensure_future(asyncio.to_thread(traffic))
    try:
        await expect(page.locator("#bdb-keys")).to_have_text("251", timeout=30_000)
        await asyncio.sleep(14)
        await expect(page.locator("#chart-ops figcaption")).not_to_contain_text("now 0", timeout=10_000)
        chart = page.locator("#chart-memory svg polyline")
        await expect(chart).to_have_attribute("points", re.compile(r"\d+.* \d+"))
        await page.screenshot(path=str(artifacts / "database.png"), full_page=True)
    finally:
        stop.set()
        await load

    # a bad create form: the API's message is shown beside the field
    await page.goto(console_url(cluster, 0) + "/#/databases/new")
    unlabelled = await page.evaluate(
        "[...document.querySelectorAll('#bdb-form input, #bdb-form select')]"
        ".filter((el) => el.labels.length === 0).map((el) => el.name)")
    assert unlabelled == []
    await page.get_by_label("Name").fill("orders")
    await page.get_by_role("button", name="Create database").click()
    await expect(page.locator("#f-name-error")).to_contain_text("a database named 'orders' exists")
    await expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Name").fill("other")
    await page.get_by_label("Port").fill("70000")
    await page.get_by_role("button", name="Create database").click()
    await expect(page.locator("#f-port-error")).to_contain_text("must be in 10000-19999")
    await expect(page.locator("#f-name-error")).to_be_empty()

    # edit: a new memory limit is applied
    await page.goto(console_url(cluster, 0) + "/#/databases")
    await page.get_by_role("link", name="orders").click()
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Memory limit (MB)")).to_have_value("64")
    await page.get_by_label("Memory limit (MB)").fill("128")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("#bdb-memory")).to_contain_text("/ 128.0 MiB")
    await expect(page.locator("#bdb-status")).to_have_text("active", timeout=60_000)

    # writes need the session's CSRF token and the console's own origin
    base = console_url(cluster, 0)
    form = {"name": "forged", "memory_mb": "1"}
    refused = await page.request.post(base + "/api/bdbs", data=form, headers={"origin": base})
    assert refused.status == 403 and "CSRF" in (await refused.json())["message"]
    token = await page.evaluate("fetch('/api/session').then((r) => r.json()).then((b) => b.csrf)")
    refused = await page.request.post(base + "/api/bdbs", data=form,
                                      headers={"origin": "https://evil.example", "x-csrf-token": token})
    assert refused.status == 403

    # the overview: cluster facts, the create action, events
    await page.get_by_role("link", name="Overview").click()
    await expect(page.locator("#ov-bdbs")).to_contain_text("1 (1 active)")
    await expect(page.locator("#actions-table")).to_contain_text("create bdb")
    await expect(page.locator("#ov-mem-free")).not_to_have_text("—")
    await page.screenshot(path=str(artifacts / "overview.png"), full_page=True)

    # kill the master's node: the page shows the roles moving (watched from a surviving node)
    await page.goto(console_url(cluster, 0) + "/#/databases")
    uid = await page.locator('#bdbs-table tr[data-bdb="orders"] a').get_attribute("href")
    await page.goto(console_url(cluster, 0) + "/" + (uid or ""))
    master = await page.locator('#shards-table tr[data-role="master"]').get_attribute("data-node")
    victim = next(n.index for n in cluster.nodes if n.addr == master)
    if victim == 0:
        page = await browser.new_page()
        await log_in(page, cluster, 1)
        await page.goto(console_url(cluster, 1) + "/" + (uid or ""))
    started = time.monotonic()
    cluster.kill_node(victim)
    new_master = page.locator('#shards-table tr[data-role="master"]')
    await expect(new_master).not_to_have_attribute("data-node", master or "", timeout=90_000)
    await expect(page.locator(f'#shards-table tr[data-node="{master}"]')).to_contain_text("down",
                                                                                        timeout=30_000)
    moved_after = time.monotonic() - started
    await page.screenshot(path=str(artifacts / "database-after-failover.png"), full_page=True)
    assert moved_after < 90
    await asyncio.to_thread(client.set, "after-failover", "1")
    await expect(page.locator("#bdb-keys")).to_have_text("252", timeout=30_000)
    await page.get_by_role("link", name="Overview").click()
    await expect(page.locator("#events")).to_contain_text(f"master of orders moved from {master}")
    await page.go_back()

    # delete it: the database goes from the list
    deadline = time.monotonic() + 60
    while True:
        await page.locator("#delete").click()
        await page.locator("#confirm-delete").click()
        try:
            await expect(page).to_have_url(re.compile(r"#/databases$"), timeout=5_000)
            break
        except AssertionError:
            # the cluster may still be recording the failover ('busy'): the page says so; retry
            assert time.monotonic() < deadline, await page.locator("#delete-error").text_content()
            await asyncio.sleep(2)
    await expect(page.locator('#bdbs-table tr[data-bdb="orders"]')).to_have_count(0, timeout=90_000)

    # logout ends the session
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto(console_url(cluster, 0 if victim != 0 else 1) + "/#/nodes")
    await expect(page).to_have_url(re.compile(r"/login#/nodes$"))  # back to this page after a login

    # the cluster's password was never written to a node's log
    for node in cluster.nodes:
        assert cluster.password not in node.log_file.read_text()
