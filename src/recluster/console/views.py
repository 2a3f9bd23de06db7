"""What the console shows, computed from the REST API's answers. Pure: no I/O, no clock.

Each function takes the API's JSON (as the REST API returns it) and gives display-ready dicts: raw
numbers for sorting and tests, `*_text` strings for the page. The browser only puts them into markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from recluster.api.quorum import majority

# form fields of the create/edit database forms, in page order
BDB_FORM_FIELDS = ("name", "memory_mb", "port", "replication", "eviction_policy", "data_persistence",
                   "authentication_redis_pass")
# API field -> form field (the API counts bytes, the form megabytes)
API_TO_FORM_FIELD = {"memory_size": "memory_mb"}
MB = 1024 * 1024


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"  # pragma: no cover - the loop always returns


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def fmt_number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


# ---- node metrics (the node's Prometheus endpoint) ------------------------------------------------

def node_metrics_from_text(text: str) -> dict[str, float]:
    """free/available memory and uptime from a node's /metrics text (docs/monitoring.md)."""
    wanted = {"node_free_memory": "free_memory", "node_available_memory": "available_memory",
              "recluster_node_uptime_seconds": "uptime"}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        key = wanted.get(family.name)
        if key is not None and family.samples:
            out[key] = float(family.samples[0].value)
    return out


# ---- the cluster ------------------------------------------------------------------------------

def _uid(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def health(nodes: Sequence[Mapping[str, Any]], quorum: int) -> dict[str, Any]:
    up = sum(1 for n in nodes if n.get("status") == "active")
    total = len(nodes)
    if total and up < quorum:
        level, text = "critical", f"no majority: {up} of {total} nodes up, {quorum} needed"
    elif up < total:
        level, text = "degraded", f"{total - up} of {total} nodes down"
    else:
        level, text = "ok", f"all {total} nodes up"
    return {"level": level, "text": text, "up": up, "total": total}


def node_rows(nodes: Sequence[Mapping[str, Any]], shards: Sequence[Mapping[str, Any]],
              bdbs: Sequence[Mapping[str, Any]], metrics: Mapping[int, Mapping[str, float]],
              leader_uid: int | None) -> list[dict[str, Any]]:
    names = {_uid(b.get("uid")): str(b.get("name")) for b in bdbs}
    rows = []
    for node in sorted(nodes, key=lambda n: _uid(n.get("uid"))):
        uid = _uid(node.get("uid"))
        here = [s for s in shards if _uid(s.get("node_uid")) == uid]
        m = metrics.get(uid, {})
        total = float(node.get("total_memory") or 0) or None
        available = m.get("available_memory")
        used = (total - available) if total is not None and available is not None else None
        is_leader = leader_uid is not None and uid == leader_uid
        rows.append({
            "uid": uid, "name": node.get("name", ""), "addr": node.get("addr", ""),
            "status": node.get("status", "unknown"), "leader": is_leader,
            "role_text": "leader" if is_leader else "member",
            "shards": [{"bdb": names.get(_uid(s.get("bdb_uid")), str(s.get("bdb_uid"))),
                        "role": s.get("role"), "status": s.get("status")} for s in here],
            "shards_text": ", ".join(f"{names.get(_uid(s.get('bdb_uid')), s.get('bdb_uid'))} "
                                     f"({_role(s.get('role'))})" for s in here) or "none",
            "memory_total": total, "memory_used": used, "memory_free": available,
            "memory_text": (f"{fmt_bytes(used)} used, {fmt_bytes(available)} free of {fmt_bytes(total)}"
                            if used is not None else f"{fmt_bytes(total)} total (no metrics)"),
            "uptime": m.get("uptime"), "uptime_text": fmt_duration(m.get("uptime")),
        })
    return rows


def _role(role: Any) -> str:
    return "master" if role == "master" else "replica"


def bdb_rows(bdbs: Sequence[Mapping[str, Any]], shards: Sequence[Mapping[str, Any]],
             nodes: Sequence[Mapping[str, Any]],
             stats: Mapping[int, Mapping[str, float]]) -> list[dict[str, Any]]:
    by_uid = {_uid(n.get("uid")): n for n in nodes}
    rows = []
    for bdb in sorted(bdbs, key=lambda b: _uid(b.get("uid"))):
        uid = _uid(bdb.get("uid"))
        endpoints = bdb.get("endpoints") or []
        endpoint = f"{endpoints[0]['dns_name']}:{endpoints[0]['port']}" if endpoints else ""
        placed = []
        for shard in sorted((s for s in shards if _uid(s.get("bdb_uid")) == uid),
                            key=lambda s: (s.get("role") != "master", _uid(s.get("uid")))):
            node = by_uid.get(_uid(shard.get("node_uid")), {})
            placed.append({"uid": _uid(shard.get("uid")), "role": _role(shard.get("role")),
                           "node_uid": _uid(shard.get("node_uid")),
                           "node": node.get("name") or shard.get("node_name", ""),
                           "node_status": node.get("status", "unknown"), "status": shard.get("status", "")})
        s = stats.get(uid)
        limit = float(bdb.get("memory_size") or 0)
        used = s.get("used_memory") if s else None
        rows.append({
            "uid": uid, "name": bdb.get("name", ""), "status": bdb.get("status", ""),
            "endpoint": endpoint or "—", "sentinel_name": bdb.get("name", ""), "port": bdb.get("port"),
            "replication": bool(bdb.get("replication")),
            "version": bdb.get("version") or "—",  # the engine its shards run
            "eviction_policy": bdb.get("eviction_policy", ""),
            "data_persistence": bdb.get("data_persistence", ""),
            "memory_limit": limit, "memory_used": used,
            "memory_text": f"{fmt_bytes(used)} / {fmt_bytes(limit) if limit else 'no limit'}",
            "keys": s.get("no_of_keys") if s else None,
            "keys_text": fmt_number(s.get("no_of_keys")) if s else "—",
            "ops": s.get("instantaneous_ops_per_sec") if s else None,
            "ops_text": fmt_number(s.get("instantaneous_ops_per_sec")) if s else "—",
            "shards": placed,
        })
    return rows


def action_rows(actions: Mapping[str, Any], limit: int = 10) -> list[dict[str, Any]]:
    """The newest actions first, from GET /v1/actions (both of its lists)."""
    listed = [*actions.get("actions", []), *actions.get("state-machines", [])]
    listed.sort(key=lambda a: str(a.get("creation_time", "")), reverse=True)
    return [{"uid": a.get("action_uid") or a.get("uid", ""), "name": str(a.get("name", "")).replace("_", " "),
             "object": a.get("object_name", ""), "status": a.get("status", ""),
             "progress": a.get("progress", 0), "time": a.get("creation_time", "")} for a in listed[:limit]]


def overview(cluster: Mapping[str, Any], nodes: Sequence[dict[str, Any]], bdbs: Sequence[dict[str, Any]],
             actions: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`nodes` and `bdbs` are rows from node_rows/bdb_rows."""
    leader = next((n for n in nodes if n["leader"]), None)
    used = [n["memory_used"] for n in nodes if n["memory_used"] is not None]
    free = [n["memory_free"] for n in nodes if n["memory_free"] is not None]
    db_used = [b["memory_used"] for b in bdbs if b["memory_used"] is not None]
    return {
        "name": cluster.get("name", ""), "version": cluster.get("software_version", ""),
        "leader": leader["name"] if leader else "none (no majority?)",
        "health": health(nodes, int(cluster.get("quorum") or majority(len(nodes)))),
        "nodes_count": len(nodes), "bdbs_count": len(bdbs),
        "bdbs_active": sum(1 for b in bdbs if b["status"] == "active"),
        "memory_used_text": fmt_bytes(sum(used)) if used else "—",
        "memory_free_text": fmt_bytes(sum(free)) if free else "—",
        "memory_nodes_reporting": len(used),
        "db_memory_text": fmt_bytes(sum(db_used)) if db_used else "—",
        "actions": action_rows(actions), "events": list(events)[-15:][::-1],
    }


# ---- events: what changed between two polls ---------------------------------------------------

def digest(nodes: Iterable[Mapping[str, Any]], bdbs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """A comparable summary of what the events talk about: node status, leader, bdb status, masters."""
    out: dict[str, str] = {}
    for n in nodes:
        out[f"node {n['name']}"] = str(n["status"])
        if n["leader"]:
            out["leader"] = str(n["name"])
    for b in bdbs:
        out[f"database {b['name']}"] = str(b["status"])
        master = next((s for s in b["shards"] if s["role"] == "master"), None)
        if master is not None:
            out[f"master of {b['name']}"] = str(master["node"])
    return out


def diff_events(before: Mapping[str, str] | None, after: Mapping[str, str]) -> list[str]:
    if before is None:
        return []
    events = []
    for key, value in after.items():
        old = before.get(key)
        if old is None:
            if key.startswith("database "):
                events.append(f"{key} appeared ({value})")
            elif key.startswith("node "):
                events.append(f"{key} joined ({value})")
        elif old != value:
            if key == "leader":
                events.append(f"leader moved from {old} to {value}")
            elif key.startswith("master of "):
                events.append(f"{key} moved from {old} to {value}")
            else:
                events.append(f"{key}: {old} → {value}")
    for key in before:
        if key not in after and key.startswith(("database ", "node ")):
            events.append(f"{key} is gone")
    return events


# ---- charts -----------------------------------------------------------------------------------

def chart(samples: Sequence[tuple[float, float]], now: float, window_s: float, title: str, unit: str,
          width: int = 300, height: int = 100, min_window_s: float = 60.0) -> dict[str, Any]:
    """An SVG polyline's points for (time, value) samples of the last `window_s` seconds. A shorter
    history (the console started watching recently) is spread over at least `min_window_s`."""
    shown = [(t, v) for t, v in samples if now - window_s <= t <= now]
    oldest = min((t for t, _ in samples), default=now - window_s)
    span = max(min(window_s, now - oldest), min_window_s)
    top = max((v for _, v in shown), default=0.0)
    scale = top * 1.1 if top > 0 else 1.0
    points = " ".join(f"{(t - (now - span)) / span * width:.1f},{height - v / scale * height:.1f}"
                      for t, v in shown)
    latest = shown[-1][1] if shown else None
    fmt = fmt_bytes if unit == "bytes" else fmt_number
    return {"title": title, "unit": unit, "width": width, "height": height, "points": points,
            "max_text": fmt(top) if shown else "—", "latest_text": fmt(latest) if latest is not None else "—",
            "samples": len(shown), "window_text": fmt_duration(span)}


# ---- forms ------------------------------------------------------------------------------------

def bdb_body_from_form(form: Mapping[str, Any], creating: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body for the create/edit database form, and the form's own errors (only what cannot be
    sent at all: a number field that is not a number). Every rule is left to the API, whose message
    is shown beside the field."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if creating:
        body["name"] = str(form.get("name", "")).strip()
    memory = str(form.get("memory_mb", "")).strip()
    if memory:
        try:
            body["memory_size"] = round(float(memory) * MB)
        except (ValueError, OverflowError):  # "abc", "nan"; "inf", "1e999"
            errors["memory_mb"] = "memory must be a number of megabytes"
    elif creating:
        body["memory_size"] = 0
    port = str(form.get("port", "")).strip()
    if creating and port:
        try:
            body["port"] = int(port)
        except ValueError:
            errors["port"] = "port must be a whole number"
    body["replication"] = form.get("replication") in (True, "on", "true", "1")
    for field in ("eviction_policy", "data_persistence"):
        value = str(form.get(field, "")).strip()
        if value:
            body[field] = value
    password = str(form.get("authentication_redis_pass", ""))
    if password:
        body["authentication_redis_pass"] = password
    return body, errors


def form_errors(status: int, body: Any) -> dict[str, Any]:
    """An API error answer as {message, fields: {form field: message}}: the field the API names gets
    the API's own message; a message with no form field is shown at the top of the form."""
    data = body if isinstance(body, Mapping) else {}
    message = str(data.get("message") or f"the request failed (HTTP {status})")
    field = str(data.get("field") or "").split(".")[0]
    field = API_TO_FORM_FIELD.get(field, field)
    if field in BDB_FORM_FIELDS:
        return {"message": message, "fields": {field: message}, "code": data.get("error_code", "")}
    return {"message": message, "fields": {}, "code": data.get("error_code", "")}
