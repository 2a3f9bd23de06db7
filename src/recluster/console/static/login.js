"use strict";
// The login form: posts the credentials as JSON; the session cookie (HttpOnly) comes back on success.
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("login-error");
  const button = form.querySelector("button");
  error.textContent = "";
  button.disabled = true;
  try {
    const answer = await fetch("/login", {
      method: "POST", credentials: "same-origin",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({username: form.username.value, password: form.password.value}),
    });
    if (answer.ok) {
      window.location.assign("/" + (window.location.hash || "#/overview"));  // the page asked for
      return;
    }
    const body = await answer.json().catch(() => ({}));
    error.textContent = body.message || ("login failed (HTTP " + answer.status + ")");
    form.password.value = "";
    form.password.setAttribute("aria-invalid", "true");
    form.password.focus();
  } catch (e) {
    error.textContent = "the console does not answer; check the node";
  } finally {
    button.disabled = false;
  }
});
