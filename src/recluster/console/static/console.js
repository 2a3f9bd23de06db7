"use strict";
// The recluster console: polls /api/snapshot every 2 s and renders the current page from it.
// The server computes every value shown (recluster.console.views); this file only builds markup,
// always with text nodes (never innerHTML), and sends the forms.

const POLL_MS = 2000;
const state = {csrf: "", can: {}, access: null, snapshot: null, route: null, formRoute: null, confirmDelete: null, rendered: "",
               deleteError: ""};

// ---- helpers -----------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

async function call(method, url, body) {
  const init = {method, credentials: "same-origin", headers: {"x-csrf-token": state.csrf}};
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(url, init);
  const data = await answer.json().catch(() => ({}));
  if (answer.status === 401 && data.login) window.location.assign("/login");
  return {status: answer.status, ok: answer.ok, data};
}

function announce(text) {
  const live = document.getElementById("live");
  live.textContent = "";
  window.setTimeout(() => { live.textContent = text; }, 50);
}

function banner(text) {
  const el = document.getElementById("banner");
  el.textContent = text || "";
  el.hidden = !text;
}

function badge(text, kind) {
  return h("span", {class: "badge badge-" + (kind || text)}, text);
}

function statusKind(status) {
  if (["active", "ok"].includes(status)) return "ok";
  if (["down", "creation-failed", "critical", "inactive"].includes(status)) return "bad";
  return "warn";
}

function table(id, caption, headers, rows) {
  return h("div", {class: "table-wrap"},
    h("table", {id, class: "data"},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", {scope: "col"}, name)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", {colspan: headers.length}, "none")))));
}

function cell(label, ...content) {
  return h("td", {"data-label": label}, ...content);
}

function breakable(endpoint) {  // "host:port" may wrap before the port, never inside it
  const at = endpoint.lastIndexOf(":");
  return at < 0 ? endpoint : [endpoint.slice(0, at), h("wbr"), endpoint.slice(at)];
}

function facts(items) {
  return h("dl", {class: "facts"}, items.map(([term, value, id]) =>
    h("div", {}, h("dt", {}, term), h("dd", {id: id || null}, value))));
}

// ---- routing -----------------------------------------------------------------------------------

function parseRoute() {
  const parts = (window.location.hash || "#/overview").replace(/^#\/?/, "").split("/");
  if (parts[0] === "databases" && parts[1] === "new") return {page: "new"};
  if (parts[0] === "databases" && parts[1] && parts[2] === "edit") return {page: "edit", uid: Number(parts[1])};
  if (parts[0] === "databases" && parts[1] && parts[2] === "permissions") return {page: "permissions", uid: Number(parts[1])};
  if (parts[0] === "databases" && parts[1]) return {page: "database", uid: Number(parts[1])};
  if (["overview", "nodes", "databases"].includes(parts[0])) return {page: parts[0]};
  return accessRoute(parts) || {page: "overview"};
}

function onRoute() {
  state.route = parseRoute();
  state.confirmDelete = null;
  const section = ["new", "edit", "database", "permissions"].includes(state.route.page) ? "databases"
    : state.route.section || state.route.page;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.route === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  state.formRoute = null;
  state.rendered = "";
  state.deleteError = "";
  render();
  document.getElementById("main").focus();
  if (needsAccess(state.route.page)) loadAccess();
}

// ---- pages -------------------------------------------------------------------------------------

function setTitle(text) {
  document.getElementById("title").textContent = text;
  document.title = text + " · recluster console";
}

function overviewPage(snap) {
  const o = snap.overview;
  setTitle("Overview");
  const actions = o.actions.map((a) => h("tr", {},
    cell("Action", a.name), cell("Object", a.object), cell("Status", badge(a.status, statusKind(
      a.status === "completed" ? "ok" : a.status === "failed" ? "bad" : "running"))),
    cell("Progress", a.progress + "%"), cell("Started", a.time)));
  return [
    facts([
      ["Cluster", o.name, "ov-name"], ["Version", o.version, "ov-version"], ["Leader", o.leader, "ov-leader"],
      ["Nodes", [String(o.nodes_count), " ", badge(o.health.text, statusKind(o.health.level))], "ov-nodes"],
      ["Databases", `${o.bdbs_count} (${o.bdbs_active} active)`, "ov-bdbs"],
      ["Memory used (nodes)", o.memory_used_text, "ov-mem-used"],
      ["Memory free (nodes)", o.memory_free_text, "ov-mem-free"],
      ["Memory used (databases)", o.db_memory_text, "ov-db-mem"],
    ]),
    h("h2", {}, "Recent actions"),
    table("actions-table", "The cluster's last actions, newest first",
          ["Action", "Object", "Status", "Progress", "Started"], actions),
    h("h2", {}, "Recent events"),
    o.events.length
      ? h("ol", {id: "events", class: "events", reversed: true},
          o.events.map((e) => h("li", {}, h("time", {}, e.time), " ", e.text)))
      : h("p", {id: "events", class: "muted"}, "No changes seen since this console started watching."),
  ];
}

function nodesPage(snap) {
  setTitle("Nodes");
  const rows = snap.nodes.map((n) => h("tr", {"data-node": n.name},
    cell("Node", h("strong", {}, n.name), " ", h("span", {class: "muted"}, "#" + n.uid)),
    cell("Address", n.addr),
    cell("Status", badge(n.status, statusKind(n.status))),
    cell("Role", n.leader ? badge("leader", "leader") : "member"),
    cell("Shards", n.shards_text),
    cell("Memory", n.memory_text),
    cell("Uptime", n.uptime_text)));
  return [table("nodes-table", `${snap.nodes.length} nodes`,
                ["Node", "Address", "Status", "Role", "Shards", "Memory", "Uptime"], rows)];
}

function placement(b) {
  return b.shards.map((s) => `${s.role} on ${s.node}`).join(", ") || "—";
}

function databasesPage(snap) {
  setTitle("Databases");
  const rows = snap.bdbs.map((b) => h("tr", {"data-bdb": b.name},
    cell("Name", h("a", {href: `#/databases/${b.uid}`, id: `bdb-link-${b.uid}`}, b.name)),
    cell("Status", badge(b.status, statusKind(b.status))),
    cell("Endpoint", b.endpoint),
    cell("Sentinel name", b.sentinel_name),
    cell("Memory used / limit", b.memory_text),
    cell("Keys", b.keys_text),
    cell("Ops/s", b.ops_text),
    cell("Shards", placement(b))));
  return [
    state.can.write_databases
      ? h("p", {}, h("a", {href: "#/databases/new", class: "button primary", id: "new-database"}, "Create database"))
      : h("p", {class: "muted", id: "read-only"}, `Read only: your role (${state.can.level}) cannot change databases.`),
    table("bdbs-table", `${snap.bdbs.length} databases`,
          ["Name", "Status", "Endpoint", "Sentinel name", "Memory used / limit", "Keys", "Ops/s", "Shards"],
          rows),
  ];
}

function chartFigure(c, id) {
  const grid = [0.25, 0.5, 0.75].map((f) => svg("line", {x1: 0, x2: c.width, y1: c.height * f,
                                                        y2: c.height * f, class: "grid"}));
  const line = svg("polyline", {points: c.points, class: "line", fill: "none"});
  const label = `${c.title} over the last ${c.window_text}: now ${c.latest_text}, highest ${c.max_text}`;
  return h("figure", {class: "chart", id},
    h("figcaption", {}, h("strong", {}, c.title), " ", h("span", {class: "muted"}, `now ${c.latest_text}`)),
    svg("svg", {viewBox: `0 0 ${c.width} ${c.height}`, role: "img", "aria-label": label,
                preserveAspectRatio: "none"}, ...grid, line),
    h("p", {class: "muted small"}, `last ${c.window_text}, top ${c.max_text}, ${c.samples} samples`));
}

function databasePage(snap) {
  const b = snap.bdbs.find((x) => x.uid === state.route.uid);
  if (!b) {
    setTitle("Database not found");
    return [h("p", {}, `Database ${state.route.uid} does not exist (any more). `,
                   h("a", {href: "#/databases"}, "All databases"))];
  }
  setTitle("Database " + b.name);
  const shards = b.shards.map((s) => h("tr", {"data-role": s.role, "data-node": s.node},
    cell("Shard", String(s.uid)), cell("Role", s.role), cell("Node", s.node),
    cell("Node status", badge(s.node_status, statusKind(s.node_status))),
    cell("Shard status", badge(s.status || "unknown", statusKind(s.status)))));
  const confirming = state.confirmDelete === b.uid;
  const remove = confirming
    ? h("div", {class: "confirm", role: "group", "aria-labelledby": "confirm-text"},
        h("p", {id: "confirm-text"}, `Delete database ${b.name} and all its data?`),
        h("button", {type: "button", class: "danger", id: "confirm-delete", onclick: () => deleteBdb(b)},
          "Yes, delete"),
        h("button", {type: "button", id: "cancel-delete", onclick: () => {
          state.confirmDelete = null; render(); document.getElementById("delete").focus();
        }}, "Cancel"))
    : h("button", {type: "button", class: "danger", id: "delete", onclick: () => {
        state.confirmDelete = b.uid; state.deleteError = ""; render(); document.getElementById("confirm-delete").focus();
      }}, "Delete");
  return [
    facts([
      ["Status", badge(b.status, statusKind(b.status)), "bdb-status"],
      ["Endpoint", breakable(b.endpoint), "bdb-endpoint"], ["Sentinel name", b.sentinel_name, "bdb-sentinel"],
      ["Memory used / limit", b.memory_text, "bdb-memory"], ["Keys", b.keys_text, "bdb-keys"],
      ["Ops/s", b.ops_text, "bdb-ops"], ["Replication", b.replication ? "yes" : "no", "bdb-replication"],
      ["Persistence", b.data_persistence, "bdb-persistence"], ["Eviction", b.eviction_policy, "bdb-eviction"],
      ["Engine", b.version, "bdb-version"],
    ]),
    h("h2", {}, "Shards"),
    table("shards-table", "Where each shard runs", ["Shard", "Role", "Node", "Node status", "Shard status"],
          shards),
    h("h2", {}, "Last minutes"),
    h("div", {class: "charts"}, chartFigure(b.charts[0], "chart-memory"), chartFigure(b.charts[1], "chart-ops")),
    permissionsSection(b),
    state.can.write_databases
      ? h("div", {class: "actions"},
          h("a", {href: `#/databases/${b.uid}/edit`, class: "button", id: "edit"}, "Edit"), remove,
          h("p", {id: "delete-error", class: "error", role: "alert"}, state.deleteError))
      : null,
  ];
}

async function deleteBdb(b) {
  const answer = await call("DELETE", `/api/bdbs/${b.uid}`);
  if (answer.ok) {
    announce(`Database ${b.name} is being deleted`);
    window.location.hash = "#/databases";
    return;
  }
  state.confirmDelete = null;
  state.deleteError = answer.data.message || "delete failed";
  render();
}

// ---- forms -------------------------------------------------------------------------------------

const EVICTION = ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
                  "allkeys-lfu", "allkeys-random", "noeviction"];
const PERSISTENCE = ["disabled", "aof", "snapshot"];

function formPage(snap) {
  const editing = state.route.page === "edit";
  const b = editing ? (snap && snap.bdbs.find((x) => x.uid === state.route.uid)) : null;
  if (editing && !b) {
    setTitle("Edit database");
    return [h("p", {class: "muted"}, snap ? "This database does not exist." : "Loading…")];
  }
  setTitle(editing ? "Edit database " + b.name : "Create database");
  const memory = b && b.memory_limit ? String(b.memory_limit / 1048576) : (editing ? "0" : "100");
  const form = h("form", {id: "bdb-form", novalidate: true, "aria-describedby": "form-error"},
    h("p", {id: "form-error", class: "error form-error", role: "alert"}),
    field("name", "Name", h("input", {type: "text", value: b ? b.name : "", readonly: editing,
                                     autocomplete: "off", required: !editing}),
          editing ? "The name cannot be changed: clients find the database by it through Sentinel."
                  : "Also the Sentinel master name. Letters, digits, '.', '_' and '-'."),
    field("memory_mb", "Memory limit (MB)", h("input", {type: "text", inputmode: "decimal", value: memory}),
          "0 means no limit."),
    field("port", "Port", h("input", {type: "text", inputmode: "numeric", value: b ? b.port : "",
                                     readonly: editing}),
          editing ? "The port cannot be changed." : "10000-19999; leave empty to pick a free one."),
    field("replication", "Replication (a replica on another node)",
          h("input", {type: "checkbox", checked: b ? b.replication : true})),
    field("eviction_policy", "Eviction policy", select(EVICTION, b ? b.eviction_policy : "volatile-lru")),
    field("data_persistence", "Persistence", select(PERSISTENCE, b ? b.data_persistence : "disabled")),
    field("authentication_redis_pass", "Password for clients",
          h("input", {type: "password", autocomplete: "new-password"}),
          editing ? "Leave empty to keep the current password." : "Optional."),
    h("div", {class: "actions"},
      h("button", {type: "submit", class: "primary"}, editing ? "Save changes" : "Create database"),
      h("a", {href: editing ? `#/databases/${b.uid}` : "#/databases", class: "button"}, "Cancel")));
  form.addEventListener("submit", (event) => submitForm(event, editing ? b : null));
  return [form];
}

function submitForm(event, bdb) {
  return sendForm(event, bdb ? "PUT" : "POST", bdb ? `/api/bdbs/${bdb.uid}` : "/api/bdbs", formValues(event.target),
    (answer) => {
      announce(bdb ? `Database ${bdb.name} is being updated` : `Database ${answer.data.name} is being created`);
      window.location.hash = `#/databases/${bdb ? bdb.uid : answer.data.uid}`;
    });
}

// ---- rendering and polling ---------------------------------------------------------------------

const PAGES = {overview: overviewPage, nodes: nodesPage, databases: databasesPage, database: databasePage};

function render() {
  const view = document.getElementById("view");
  const route = state.route || parseRoute();
  const build = route.page === "new" || route.page === "edit" ? formPage : ACCESS_FORMS[route.page];
  if (build) {
    // a form is built once per visit (never while the user types), as soon as its data is there
    const ready = ["new", "account"].includes(route.page) || Boolean(route.page === "edit" ? state.snapshot : state.access);
    const key = `${route.page}:${route.uid || ""}:${ready}`;
    if (state.formRoute === key) return;
    state.formRoute = key;
    view.replaceChildren(...build(route.page === "edit" ? state.snapshot : state.access));
    return;
  }
  const list = ACCESS_LISTS[route.page];
  if (!(list ? state.access : state.snapshot)) return;
  // redraw only when something shown changed, and give the focus back to the same control
  const shown = list ? [state.access] : [state.snapshot.overview, state.snapshot.nodes, state.snapshot.bdbs,
                                         route.page === "database" ? state.access : null];
  const key = JSON.stringify([route, state.confirmDelete, state.deleteError, ...shown]);
  if (key === state.rendered) return;
  state.rendered = key;
  const focused = document.activeElement && document.activeElement.id;
  view.replaceChildren(...(list ? list(state.access) : PAGES[route.page](state.snapshot)));
  if (focused && view.querySelector("#" + CSS.escape(focused))) document.getElementById(focused).focus();
}

async function poll() {
  if (document.hidden) {  // a tab in the background does not poll; it catches up when shown
    window.setTimeout(poll, POLL_MS);
    return;
  }
  try {
    const answer = await call("GET", "/api/snapshot");
    if (answer.ok) {
      banner("");
      state.snapshot = answer.data;
      document.getElementById("cluster-name").textContent = answer.data.overview.name;
      document.getElementById("updated").textContent =
        "updated " + new Date(answer.data.time * 1000).toLocaleTimeString();
      render();
    } else if (answer.status !== 401) {
      banner(answer.data.message || `the console cannot read the cluster (HTTP ${answer.status})`);
    }
  } catch (e) {
    banner("the console does not answer; retrying");
  } finally {
    window.setTimeout(poll, POLL_MS);
  }
}

async function start() {
  const who = await call("GET", "/api/session");
  if (!who.ok) {
    if (who.status === 401) {
      window.location.assign("/login");
    } else {  // the session cannot be checked now (e.g. the node's cluster store restarts): retry
      banner(who.data.message || `the console cannot check the session (HTTP ${who.status}); retrying`);
      window.setTimeout(start, POLL_MS);
    }
    return;
  }
  banner("");
  state.csrf = who.data.csrf;
  state.can = who.data.can;
  document.getElementById("user").textContent = `${who.data.username} (${who.data.can.level})`;
  for (const item of document.querySelectorAll("nav [data-needs]")) item.hidden = !state.can[item.dataset.needs];
  document.getElementById("logout").addEventListener("click", async () => {
    const answer = await call("POST", "/logout");
    if (answer.ok || answer.status === 401) {
      window.location.assign("/login");
    } else {  // the cluster could not record it: still logged in, say so
      banner(answer.data.message || `the logout failed (HTTP ${answer.status}); try again`);
      announce(answer.data.message || "the logout failed");
    }
  });
  window.addEventListener("hashchange", onRoute);
  onRoute();
  poll();
}

start();
