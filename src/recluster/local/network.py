"""The host side of a local cluster's network: its bridge and its `unreachable` guard route.

Only what this module created is removed: the bridge by its name (which only recluster uses, and
which was created by us when `network.json` says so), the route by its prefix and its own metric.
"""

from __future__ import annotations

import json
from pathlib import Path

from recluster.local.layout import RESERVED_RANGE, Layout
from recluster.local.run import CommandError, run


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def _record(state_dir: Path) -> dict[str, bool]:
    try:
        data: dict[str, bool] = json.loads((state_dir / "network.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


def _save(state_dir: Path, record: dict[str, bool]) -> None:
    (state_dir / "network.json").write_text(json.dumps(record))


def claim_bridge(layout: Layout, state_dir: Path) -> bool:
    """Create the bridge; False if the name is taken (another cluster holds the slot).
    `ip link add` is atomic, so the bridge itself is the claim on the slot."""
    record = _record(state_dir)
    if record.get("bridge") and link_exists(layout.bridge):
        return True
    if run(["ip", "link", "add", layout.bridge, "type", "bridge"], check=False).returncode != 0:
        return False
    _save(state_dir, {**record, "bridge": True})
    return True


def setup(layout: Layout, state_dir: Path) -> None:
    if not claim_bridge(layout, state_dir):
        raise CommandError(f"interface {layout.bridge} exists and is not this cluster's: slot taken")
    addrs = run(["ip", "-o", "-4", "addr", "show", "dev", layout.bridge]).stdout
    if layout.bridge_cidr not in addrs:
        run(["ip", "addr", "add", layout.bridge_cidr, "dev", layout.bridge])
    run(["ip", "link", "set", layout.bridge, "up"])
    if not _unreachable_route_present(layout):
        run(
            [
                "ip",
                "route",
                "add",
                "unreachable",
                str(RESERVED_RANGE),
                "metric",
                str(layout.unreachable_metric),
            ]
        )
    _save(state_dir, {**_record(state_dir), "route": True})


def _unreachable_route_present(layout: Layout) -> bool:
    out = run(["ip", "-4", "route", "show", "type", "unreachable", str(RESERVED_RANGE)]).stdout
    return any(f"metric {layout.unreachable_metric}" in line for line in out.splitlines())


def teardown(layout: Layout, state_dir: Path) -> None:
    record = _record(state_dir)
    if record.get("bridge") and link_exists(layout.bridge):
        run(["ip", "link", "del", layout.bridge])
    if record.get("route") and _unreachable_route_present(layout):
        run(
            [
                "ip",
                "route",
                "del",
                "unreachable",
                str(RESERVED_RANGE),
                "metric",
                str(layout.unreachable_metric),
            ]
        )
    (state_dir / "network.json").unlink(missing_ok=True)
