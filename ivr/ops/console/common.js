// What every console page shares (docs/desk/core.md "Console pages"): the token the
// console keeps in sessionStorage, calls to the ops API, and the error/notice boxes.
// Load it before the page's own script, both deferred (they run in order):
//   <script src="/console/common.js" defer></script>
//   <script src="/console/mine.js" defer></script>
// It is a classic script: its top-level names (TOKEN_KEY, ROLE_LEVEL, ROLE_LABEL, $,
// ApiError, authHeaders, api, setupErrors, showError, showNotice, downloadFile) are the page's too, so
// a page must not declare them again. Data from the API is always written with textContent.
"use strict";

const TOKEN_KEY = "citas-ops-token"; // one login for every page of the console
const ROLE_LEVEL = { viewer: 1, operator: 2, admin: 3 };
const ROLE_LABEL = { viewer: "consulta", operator: "operador", admin: "administrador" };
const $ = (id) => document.getElementById(id);

// An answer of the API that is not 2xx: `status` (0: no answer at all), `message`
// (Spanish, the API's), `details` ([{field, message}] or a part's own shape).
class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `el servidor respondió con un error (HTTP ${status})`);
    this.status = status;
    this.details = (body && body.details) || [];
    this.body = body || null;
  }
}

// The Authorization header of the console's token (never put the token in a URL).
const authHeaders = () => ({ Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` });

// Call the ops API: JSON in (when `body` is given) and out. Throws ApiError for an
// answer that is not 2xx, and ApiError(0) when the server cannot be reached.
async function api(method, path, body) {
  const headers = authHeaders();
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { message: "no hay conexión con el servidor; intente de nuevo" });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// --- messages ---------------------------------------------------------------------
const ERROR_PREFIX = {
  0: "Sin conexión", 401: "Sin acceso", 403: "No permitido", 404: "No existe", 409: "No se pudo",
  422: "Cambio rechazado", 503: "Base de datos no disponible",
};
const errorSettings = { prefixes: { ...ERROR_PREFIX }, detail: null, onUnauthorized: null };

// A page's own words and behaviour for errors, all optional:
//   prefixes: {status: "Prefijo"} replacing the defaults (e.g. {422: "Reporte rechazado"});
//   detail(d, li): writes one detail into its <li> (default: "field: message");
//   onUnauthorized(err): what a 401 does (show the login form, log out...).
function setupErrors({ prefixes, detail, onUnauthorized } = {}) {
  Object.assign(errorSettings.prefixes, prefixes || {});
  if (detail) errorSettings.detail = detail;
  if (onUnauthorized) errorSettings.onUnauthorized = onUnauthorized;
}

// Show `err` (an ApiError or any Error) in the #error box, its details as a list, and
// hide the #notice box; `showError(null)` hides the error box.
function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; return; }
  box.replaceChildren();
  const prefix = errorSettings.prefixes[err.status];
  const title = document.createElement("strong");
  // Not an answer of the API (a TypeError of a page's script, a browser error): its text is
  // the browser's, in English; the person reads Spanish and what to do, the console the cause.
  const message = err instanceof ApiError || err.status !== undefined ? err.message
    : "la página falló; recárguela y, si se repite, avise a soporte";
  if (message !== err.message) console.error(err);
  title.textContent = (prefix ? `${prefix}: ` : "Error: ") + message;
  box.append(title);
  if (err.details && err.details.length) {
    const list = document.createElement("ul");
    for (const d of err.details) {
      const li = document.createElement("li");
      if (errorSettings.detail) errorSettings.detail(d, li);
      else li.textContent = d.field ? `${d.field}: ${d.message}` : String(d.message || "");
      list.append(li);
    }
    box.append(list);
  }
  box.hidden = false;
  const notice = $("notice");
  if (notice) notice.hidden = true;
  if (err.status === 401 && errorSettings.onUnauthorized) errorSettings.onUnauthorized(err);
}

// Show `text` in the #notice box and hide the error box.
function showNotice(text) {
  $("error").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

// A table cell holding `text` (as textContent: API data is never HTML), with `className`.
function textCell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// Download what `path` answers (an export: CSV, XLSX) as a file, named as the server's
// Content-Disposition says, else `fallbackName`; a refusal goes to showError.
async function downloadFile(path, fallbackName) {
  try {
    const response = await fetch(path, { headers: authHeaders() });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const blob = await response.blob();
    const match = /filename=([^;]+)/.exec(response.headers.get("Content-Disposition") || "");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = match ? match[1].trim() : fallbackName;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (err) {
    showError(err);
  }
}
