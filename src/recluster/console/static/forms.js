"use strict";
// Form helpers shared by the console's pages (console.js, access.js): labelled fields with their
// hint and error, the API's message beside the field it names, and the values a form sends.

function field(name, label, input, help) {
  const id = "f-" + name;
  input.id = id;
  input.name = name;
  input.setAttribute("aria-describedby", `${id}-error` + (help ? ` ${id}-help` : ""));
  const box = input.type === "checkbox"
    ? h("div", {class: "field check"}, input, h("label", {for: id}, label))
    : h("div", {class: "field"}, h("label", {for: id}, label), input);
  if (help) box.append(h("p", {id: `${id}-help`, class: "help"}, help));
  box.append(h("p", {id: `${id}-error`, class: "error field-error"}));
  return box;
}

function select(options, value) {
  return h("select", {}, options.map((o) => h("option", {value: o, selected: o === value}, o)));
}

function showErrors(form, message, fields) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const names = Object.keys(fields || {});
  const top = form.querySelector(".form-error");
  top.textContent = names.length ? "The cluster refused the form: see the marked field." : (message || "");
  let first = null;
  for (const name of names) {
    const error = document.getElementById(`f-${name}-error`);
    if (!error) continue;
    error.textContent = fields[name];
    let input = form.elements[name];
    if (input && !(input instanceof Element)) input = input[0];  // a group of checkboxes
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    first = first || input;
  }
  if (first) first.focus();
}

function formValues(form) {
  // checkboxes sharing a name (a list such as role_uids) give the checked values; a lone one, true/false
  const values = {};
  for (const el of form.elements) {
    if (!el.name || el.dataset.skip) continue;
    if (el.type === "checkbox" && el.dataset.list) {
      values[el.name] = values[el.name] || [];
      if (el.checked) values[el.name].push(el.value);
    } else {
      values[el.name] = el.type === "checkbox" ? el.checked : el.value;
    }
  }
  return values;
}

function formShell(id, ...children) {
  return h("form", {id, novalidate: true, "aria-describedby": `${id}-error`},
    h("p", {id: `${id}-error`, class: "error form-error", role: "alert"}), ...children);
}

async function sendForm(event, method, url, values, done) {
  // send a form's values; on success `done(answer)`, else the API's message beside the field
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const answer = await call(method, url, values);
    if (answer.ok) {
      done(answer);
      return;
    }
    showErrors(form, answer.data.message, answer.data.fields);
  } catch (e) {
    showErrors(form, "the console does not answer", {});
  } finally {
    button.disabled = false;
  }
}
