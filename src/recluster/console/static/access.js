"use strict";
// Users, roles, Redis ACLs, a database's roles and Redis ACLs, and "change my password". The server
// computes what is shown (/api/access, recluster.console.access_views); the REST API decides what the
// session may do, and these pages hide what it would refuse. Passwords are only ever in inputs of
// type password and in request bodies: never shown, never in a URL.
// Uses console.js's and forms.js's helpers (h, cell, table, call, field, formShell, sendForm ...).

const LEVELS = ["none", "db_viewer", "cluster_viewer", "db_member", "cluster_member", "admin"];

function accessRoute(parts) {
  const [kind, id, action] = parts;
  if (kind === "account") return {page: "account", section: "account"};
  if (!["users", "roles", "acls"].includes(kind)) return null;
  if (!id) return {page: kind};
  if (id === "new") return {page: kind + "-new", section: kind};
  if (kind === "users" && ["password", "edit"].includes(action)) return {page: "user-" + action, uid: Number(id), section: kind};
  if (kind === "acls" && action === "edit") return {page: "acl-edit", uid: Number(id), section: kind};
  return {page: kind};
}

function needsAccess(page) {
  return page === "database" || page in ACCESS_LISTS || page in ACCESS_FORMS;
}

async function loadAccess() {
  const answer = await call("GET", "/api/access");
  if (answer.ok) {
    state.access = answer.data;
    state.can = answer.data.can;
    render();
  } else if (answer.status !== 401) {
    banner(answer.data.message || `the console cannot read users and roles (HTTP ${answer.status})`);
  }
}

function refusedPage(title, a) {
  setTitle(title);
  return [h("p", {id: "access-refused", class: "notice"}, a.refused)];
}

function loadingPage(title) {
  setTitle(title);
  return [h("p", {class: "muted"}, "Loading…")];
}

function deleteControl(kind, uid, what, url) {
  if (state.confirmDelete === `${kind}:${uid}`) {
    return h("span", {class: "confirm", role: "group", "aria-label": `Delete ${what}?`},
      h("span", {}, `Delete ${what}?`),
      h("button", {type: "button", class: "danger", id: "confirm-delete", onclick: () => deleteAccess(what, url)},
        "Yes, delete"),
      h("button", {type: "button", id: "cancel-delete", onclick: () => { state.confirmDelete = null; render(); }},
        "Cancel"));
  }
  return h("button", {type: "button", class: "danger", id: `delete-${kind}-${uid}`, "aria-label": `Delete ${what}`,
                      onclick: () => {
                        state.confirmDelete = `${kind}:${uid}`; state.deleteError = ""; render();
                        document.getElementById("confirm-delete").focus();
                      }}, "Delete");
}

async function deleteAccess(what, url) {
  const answer = await call("DELETE", url);
  state.confirmDelete = null;
  state.deleteError = answer.ok ? "" : (answer.data.message || "delete failed");
  if (answer.ok) announce(`${what} deleted`);
  await loadAccess();
  render();
}

function deleteError() {
  return h("p", {id: "delete-error", class: "error", role: "alert"}, state.deleteError);
}

// ---- lists -------------------------------------------------------------------------------------

function usersPage(a) {
  if (!a.users) return refusedPage("Users", a);
  setTitle("Users");
  const rows = a.users.map((u) => h("tr", {"data-user": u.name},
    cell("Name", h("strong", {}, u.name)), cell("Email", u.email || "—"), cell("Roles", u.roles_text),
    cell("Role level", u.level),
    cell("Actions", h("div", {class: "row-actions"},
      h("a", {href: `#/users/${u.uid}/edit`, class: "button", "aria-label": `Change roles of ${u.name}`}, "Roles"),
      h("a", {href: `#/users/${u.uid}/password`, class: "button", "aria-label": `Set the password of ${u.name}`},
        "Password"),
      deleteControl("user", u.uid, `user ${u.name}`, `/api/users/${u.uid}`)))));
  return [
    h("p", {}, h("a", {href: "#/users/new", class: "button primary", id: "new-user"}, "Create user")),
    table("users-table", `${a.users.length} users`, ["Name", "Email", "Roles", "Role level", "Actions"], rows),
    deleteError(),
  ];
}

function rolesPage(a) {
  if (!a.roles) return refusedPage("Roles", a);
  setTitle("Roles");
  const rows = a.roles.map((r) => h("tr", {"data-role": r.name},
    cell("Name", h("strong", {}, r.name)), cell("Management level", r.management),
    cell("Redis ACLs by database", r.databases_text),
    cell("Actions", deleteControl("role", r.uid, `role ${r.name}`, `/api/roles/${r.uid}`))));
  return [
    h("p", {}, h("a", {href: "#/roles/new", class: "button primary", id: "new-role"}, "Create role")),
    table("roles-table", `${a.roles.length} roles`, ["Name", "Management level", "Redis ACLs by database", "Actions"],
          rows),
    deleteError(),
  ];
}

function aclsPage(a) {
  setTitle("Redis ACLs");
  const admin = a.can.manage_access;
  const rows = a.redis_acls.map((x) => h("tr", {"data-acl": x.name},
    cell("Name", h("strong", {}, x.name)), cell("Rules", h("code", {}, x.acl)),
    cell("Kind", x.predefined ? "predefined" : "custom"),
    admin ? cell("Actions", x.predefined ? "—" : h("div", {class: "row-actions"},
      h("a", {href: `#/acls/${x.uid}/edit`, class: "button", "aria-label": `Edit the rules of ${x.name}`}, "Edit"),
      deleteControl("acl", x.uid, `Redis ACL ${x.name}`, `/api/redis_acls/${x.uid}`))) : null));
  return [
    admin ? h("p", {}, h("a", {href: "#/acls/new", class: "button primary", id: "new-acl"}, "Create Redis ACL"))
          : h("p", {class: "muted"}, "Only the admin changes Redis ACLs."),
    table("acls-table", `${a.redis_acls.length} Redis ACLs`, ["Name", "Rules", "Kind", ...(admin ? ["Actions"] : [])],
          rows),
    deleteError(),
  ];
}

function permissionsSection(b) {
  const a = state.access;
  const rows = a ? (a.permissions[String(b.uid)] || []) : null;
  return h("section", {"aria-labelledby": "permissions-title"},
    h("h2", {id: "permissions-title"}, "Roles and Redis ACLs"),
    rows === null ? h("p", {class: "muted"}, "Loading…")
      : table("permissions-table", "What each role's users may run on this database", ["Role", "Redis ACL"],
              rows.map((p) => h("tr", {}, cell("Role", p.role), cell("Redis ACL", p.acl)))),
    state.can.write_databases
      ? h("p", {}, h("a", {href: `#/databases/${b.uid}/permissions`, class: "button", id: "edit-permissions"},
                    "Change roles and Redis ACLs"))
      : null);
}

// ---- forms -------------------------------------------------------------------------------------

function passwordInput() {
  return h("input", {type: "password", autocomplete: "new-password"});
}

function roleChoices(a, chosen) {
  return h("fieldset", {class: "field", "aria-describedby": "f-role_uids-error"},
    h("legend", {}, "Roles"),
    a.roles.length ? a.roles.map((r) => h("div", {class: "field check"},
      h("input", {type: "checkbox", name: "role_uids", value: r.uid, "data-list": "1", id: `role-${r.uid}`,
                  checked: chosen.includes(r.uid)}),
      h("label", {for: `role-${r.uid}`}, `${r.name} (${r.management})`)))
      : h("p", {class: "muted"}, "No roles yet: create one on the Roles page."),
    h("p", {id: "f-role_uids-error", class: "error field-error"}));
}

function buttons(submit, back) {
  return h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, submit),
           h("a", {href: back, class: "button"}, "Cancel"));
}

function confirmed(event, form) {
  // the "again" field must match; it is checked here and never sent
  if (form.elements.new_password_again.value === (form.elements.password || form.elements.new_password).value) {
    return true;
  }
  event.preventDefault();
  showErrors(form, "", {new_password_again: "the two passwords differ"});
  return false;
}

function againField() {
  const input = passwordInput();
  input.dataset.skip = "1";
  return field("new_password_again", "New password again", input);
}

function userNewForm(a) {
  if (!a) return loadingPage("Create user");
  if (!a.users) return refusedPage("Create user", a);
  setTitle("Create user");
  const form = formShell("user-form",
    field("name", "Name", h("input", {type: "text", autocomplete: "off"}),
          "The login, and the user's name on the databases (AUTH name password)."),
    field("email", "Email", h("input", {type: "text", autocomplete: "off"}), "Optional; also a login."),
    field("password", "Password", passwordInput(), "8-512 characters."),
    roleChoices(a, []), buttons("Create user", "#/users"));
  form.addEventListener("submit", (event) => sendForm(event, "POST", "/api/users", formValues(form), (answer) => {
    announce(`User ${answer.data.name} created`);
    window.location.hash = "#/users";
  }));
  return [form];
}

function theUser(a, title) {
  if (!a) return loadingPage(title);
  if (!a.users) return refusedPage(title, a);
  const u = a.users.find((x) => x.uid === state.route.uid);
  if (!u) {
    setTitle(title);
    return [h("p", {}, "This user does not exist (any more). ", h("a", {href: "#/users"}, "All users"))];
  }
  return u;
}

function userEditForm(a) {
  const u = theUser(a, "Change user");
  if (Array.isArray(u)) return u;
  setTitle(`Change user ${u.name}`);
  const form = formShell("user-form",
    field("email", "Email", h("input", {type: "text", autocomplete: "off", value: u.email})),
    roleChoices(a, u.role_uids), buttons("Save changes", "#/users"));
  form.addEventListener("submit", (event) => sendForm(event, "PUT", `/api/users/${u.uid}`, formValues(form), () => {
    announce(`User ${u.name} changed`);
    window.location.hash = "#/users";
  }));
  return [form];
}

function userPasswordForm(a) {
  const u = theUser(a, "Set a password");
  if (Array.isArray(u)) return u;
  setTitle(`Set the password of ${u.name}`);
  const form = formShell("password-form", field("password", "New password", passwordInput(), "8-512 characters."),
                         againField(), buttons("Set password", "#/users"));
  form.addEventListener("submit", (event) => confirmed(event, form) && sendForm(
    event, "PUT", `/api/users/${u.uid}/password`, formValues(form), () => {
      announce(`The password of ${u.name} is set`);
      window.location.hash = "#/users";
    }));
  return [form];
}

function roleNewForm(a) {
  if (!a) return loadingPage("Create role");
  if (!a.roles) return refusedPage("Create role", a);
  setTitle("Create role");
  const form = formShell("role-form",
    field("name", "Name", h("input", {type: "text", autocomplete: "off"})),
    field("management", "Management level", select(LEVELS, "db_viewer"),
          "What its users may do in the console and the REST API; 'none': databases only."),
    buttons("Create role", "#/roles"));
  form.addEventListener("submit", (event) => sendForm(event, "POST", "/api/roles", formValues(form), (answer) => {
    announce(`Role ${answer.data.name} created`);
    window.location.hash = "#/roles";
  }));
  return [form];
}

function aclForm(a) {
  const editing = state.route.page === "acl-edit";
  const title = editing ? "Edit Redis ACL" : "Create Redis ACL";
  if (!a) return loadingPage(title);
  if (!a.can.manage_access) return refusedPage(title, a);
  const x = editing ? a.redis_acls.find((y) => y.uid === state.route.uid && !y.predefined) : null;
  if (editing && !x) return [h("p", {}, "This Redis ACL does not exist or is predefined. ", h("a", {href: "#/acls"}, "All"))];
  setTitle(editing ? `Edit Redis ACL ${x.name}` : title);
  const form = formShell("acl-form",
    field("name", "Name", h("input", {type: "text", autocomplete: "off", value: x ? x.name : "", readonly: editing})),
    field("acl", "Rules", h("input", {type: "text", autocomplete: "off", value: x ? x.acl : "", spellcheck: "false"}),
          "Redis ACL rules, for example +@read ~* or +@all -@dangerous ~cache:*"),
    buttons(editing ? "Save changes" : "Create Redis ACL", "#/acls"));
  form.addEventListener("submit", (event) => sendForm(event, editing ? "PUT" : "POST",
    editing ? `/api/redis_acls/${x.uid}` : "/api/redis_acls", formValues(form), () => {
      announce(editing ? `Redis ACL ${x.name} changed` : "Redis ACL created");
      window.location.hash = "#/acls";
    }));
  return [form];
}

function accountForm() {
  setTitle("Change my password");
  const done = h("p", {id: "account-done", role: "status"});
  const form = formShell("account-form",
    field("old_password", "Current password", h("input", {type: "password", autocomplete: "current-password"})),
    field("new_password", "New password", passwordInput(), "8-512 characters."), againField(),
    h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Change password")));
  form.addEventListener("submit", (event) => {
    done.textContent = "";
    if (confirmed(event, form)) {
      sendForm(event, "POST", "/api/password", formValues(form), (answer) => {
        form.reset();
        showErrors(form, "", {});
        done.textContent = answer.data.message;
        announce(answer.data.message);
      });
    }
  });
  return [form, done];
}

function permissionRow(a, p, n) {
  const roles = a.roles
    ? h("select", {"data-role": "1"}, h("option", {value: ""}, "choose a role"),
        a.roles.map((r) => h("option", {value: r.uid, selected: p && r.uid === p.role_uid}, r.name)))
    : h("input", {type: "text", inputmode: "numeric", "data-role": "1", value: p ? p.role_uid : ""});
  const acls = h("select", {"data-acl": "1"}, h("option", {value: ""}, "choose a Redis ACL"),
    a.redis_acls.map((x) => h("option", {value: x.uid, selected: p && x.uid === p.redis_acl_uid}, x.name)));
  roles.id = `perm-role-${n}`;
  acls.id = `perm-acl-${n}`;
  return h("div", {class: "perm-row"},
    h("div", {class: "field"}, h("label", {for: roles.id}, a.roles ? `Role ${n}` : `Role uid ${n}`), roles),
    h("div", {class: "field"}, h("label", {for: acls.id}, `Redis ACL ${n}`), acls));
}

function permissionsForm(a) {
  if (!a) return loadingPage("Roles and Redis ACLs");
  const uid = state.route.uid;
  const b = state.snapshot && state.snapshot.bdbs.find((x) => x.uid === uid);
  setTitle(`Roles and Redis ACLs of ${b ? b.name : "database " + uid}`);
  if (!a.can.write_databases) return refusedPage("Roles and Redis ACLs", {refused: `Your role (${a.can.level}) cannot change databases.`});
  const rows = h("div", {id: "perm-rows"}, (a.permissions[String(uid)] || []).map((p, i) => permissionRow(a, p, i + 1)));
  const add = h("button", {type: "button", id: "add-permission", onclick: () => {
    const row = permissionRow(a, null, rows.children.length + 1);
    rows.append(row);
    row.querySelector("select, input").focus();
  }}, "Add a role");
  const form = formShell("permissions-form", rows, add,
    h("p", {id: "f-roles_permissions-error", class: "error field-error"}),
    a.roles ? null : h("p", {class: "help"}, "Only the admin sees role names: roles are shown by uid."),
    buttons("Save", `#/databases/${uid}`));
  form.addEventListener("submit", (event) => {
    const values = {roles_permissions: [...rows.children].map((row) => ({
      role_uid: row.querySelector("[data-role]").value, redis_acl_uid: row.querySelector("[data-acl]").value}))};
    sendForm(event, "PUT", `/api/bdbs/${uid}/permissions`, values, () => {
      announce("Roles and Redis ACLs saved");
      window.location.hash = `#/databases/${uid}`;
    });
  });
  return [form];
}

const ACCESS_LISTS = {users: usersPage, roles: rolesPage, acls: aclsPage};
const ACCESS_FORMS = {"users-new": userNewForm, "user-edit": userEditForm, "user-password": userPasswordForm,
                      "roles-new": roleNewForm, "acls-new": aclForm, "acl-edit": aclForm, account: accountForm,
                      permissions: permissionsForm};
