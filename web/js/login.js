// The login page: name + password to POST /api/login, then on to the annotation page.
// The server answers with a session cookie (HttpOnly) and a CSRF token cookie that api.js sends.

const form = /** @type {HTMLFormElement} */ (document.getElementById("login"));
const error = /** @type {HTMLElement} */ (document.getElementById("login-error"));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const body = {
    name: /** @type {HTMLInputElement} */ (document.getElementById("name")).value,
    password: /** @type {HTMLInputElement} */ (document.getElementById("password")).value,
  };
  let response;
  try {
    response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    error.textContent = `cannot reach the maskloop server: ${/** @type {Error} */ (err).message}`;
    return;
  }
  if (response.ok) {
    window.location.assign("/");
    return;
  }
  const data = await response.json().catch(() => null);
  error.textContent = data?.error ?? `login failed (HTTP ${response.status})`;
});
