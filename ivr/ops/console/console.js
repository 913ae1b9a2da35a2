// The ops console: plain DOM over the ops API (docs/operations.md). No framework,
// no build step. Data from the API is always written with textContent.
// TOKEN_KEY, ROLE_LEVEL, ROLE_LABEL, $, api, ApiError, showError, showNotice, textCell: common.js;
// refreshNodes: nodes.js.
"use strict";

const SOURCE_LABEL = { default: "por defecto", set: "fijado", window: "ventana" };
const STATE_LABEL = { scheduled: "programada", active: "activa", ended: "terminada", cancelled: "cancelada" };
const ACTION_LABEL = {
  set: "cambio", reset: "valor por defecto", schedule: "ventana programada",
  cancel_window: "ventana cancelada", window_started: "inicio de ventana",
  window_ended: "fin de ventana", incident_on: "incidente ACTIVADO",
  incident_off: "incidente desactivado", token_created: "token creado", token_revoked: "token revocado",
};
// The chats (ivr/chat/store.py) and the calls (ivr/store/records.py): what a conversation ended in, why it went to a person.
const OUTCOME_LABEL = {
  booked: "cita asignada", appointment_cancelled: "cita cancelada", rescheduled: "cita reprogramada",
  appointments_listed: "citas consultadas", appointment_kept: "cita conservada",
  appointment_not_found: "cita no encontrada", no_appointments: "sin citas pendientes",
  has_appointment: "ya tenía una cita", not_booked: "sin cita asignada", reschedule_no_slots: "sin cupos para reprogramar",
  redirected_whatsapp: "remitida a WhatsApp", redirected_whatsapp_no_sms: "remitida a WhatsApp (sin SMS)",
  handed_off: "transferida a un asesor", expired: "expirada por inactividad", completed: "terminada",
  case_filed: "caso radicado", case_open: "ya tenía un caso abierto",
  // Calls only (ivr/controller.py, the flows' hangup nodes, ivr/store/records.py).
  transferred: "transferida a un asesor", abandoned: "el usuario colgó", failed: "falló el paso a un asesor",
  no_input: "sin respuesta del usuario", interrupted: "interrumpida",
};
const HANDOFF_REASON_LABEL = {
  asked: "pidió hablar con un asesor", incident: "modo incidente", "invalid-input": "no se pudo identificar o respuestas no válidas",
  "non-target": "fuera de la población objetivo", "self-service-off": "autoservicio apagado",
  "service-unavailable": "servicio de agendamiento caído", "redirect-off": "redirección apagada",
};
const REFRESH_MS = 10000;

const state = { me: null, flags: [], editing: null, timer: null };

// --- messages ---------------------------------------------------------------
setupErrors({
  // A broken rule across flags: the rule and the first instant it would break.
  detail: (d, li) => {
    li.textContent = d.rule
      ? `Regla ${d.rule}, incumplida desde ${formatTime(d.at)} (hora local)`
      : `${d.field}: ${d.message}`;
    if (d.rule) li.className = "rule";
  },
  onUnauthorized: (err) => logout("La sesión ya no es válida: " + err.message),
});

// --- formatting ------------------------------------------------------------------
function formatValue(value) {
  if (value === true) return "encendido";
  if (value === false) return "apagado";
  if (value === null || value === undefined) return "(vacío)";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString("es-CO") : "";
}

function button(text, className, onClick, enabled) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.disabled = !enabled;
  b.addEventListener("click", onClick);
  return b;
}

const mayChange = (flag) => ROLE_LEVEL[state.me.role] >= ROLE_LEVEL[flag.min_role];
const isOperator = () => ROLE_LEVEL[state.me.role] >= ROLE_LEVEL.operator;

// --- rendering ----------------------------------------------------------------------
function renderFlags(flags) {
  state.flags = flags;
  const rows = flags.map((flag) => {
    const tr = document.createElement("tr");
    tr.dataset.flag = flag.name;
    tr.dataset.value = JSON.stringify(flag.value);
    const updated = flag.updated_by ? `${flag.updated_by}, ${formatTime(flag.updated_at)}` : "";
    const source = SOURCE_LABEL[flag.source] + (flag.window_ends_at ? ` (hasta ${formatTime(flag.window_ends_at)})` : "");
    tr.append(
      textCell(flag.name, "name"), textCell(flag.description),
      textCell(formatValue(flag.value), flag.value === false ? "value value-off" : "value"),
      textCell(source, `source source-${flag.source}`), textCell(updated, "updated"),
    );
    const actions = document.createElement("td");
    if (flag.name === "incident_mode") {
      actions.textContent = "(interruptor arriba)";  // one switch, audited as incident_on/off
    } else {
      if (flag.kind === "bool") {
        actions.append(button(flag.value ? "Apagar" : "Encender", "toggle", () => edit(flag, !flag.value), mayChange(flag)));
      }
      actions.append(button("Editar", "edit", () => edit(flag, flag.set_value), mayChange(flag)));
    }
    tr.append(actions);
    return tr;
  });
  $("flags").tBodies[0].replaceChildren(...rows);

  const incident = flags.find((f) => f.name === "incident_mode");
  if (incident) renderIncident(incident.value === true);
  const filter = $("audit-filter");
  if (filter.options.length === 1) {
    for (const flag of flags) filter.append(new Option(flag.name, flag.name));
  }
}

function renderIncident(on) {
  $("incident").className = on ? "incident-on" : "incident-off";
  $("incident").dataset.active = String(on);
  $("incident-state").textContent = on ? "ENCENDIDO" : "apagado";
  $("incident-toggle").textContent = on ? "Desactivar modo incidente" : "Activar modo incidente";
  $("incident-toggle").disabled = !isOperator();
  $("incident-reason").disabled = !isOperator();
}

function renderWindows(windows) {
  const rows = windows.map((w) => {
    const tr = document.createElement("tr");
    tr.dataset.window = w.id;
    tr.dataset.state = w.state;
    tr.append(
      textCell(w.name, "name"), textCell(formatValue(w.value), "value"), textCell(formatTime(w.starts_at)),
      textCell(formatTime(w.ends_at)), textCell(STATE_LABEL[w.state] || w.state, "state"), textCell(w.reason),
      textCell(w.created_by),
    );
    const td = document.createElement("td");
    if (w.state === "scheduled" || w.state === "active") {
      const flag = state.flags.find((f) => f.name === w.name);
      const allowed = flag ? mayChange(flag) : false;
      const reason = document.createElement("input");
      reason.type = "text";
      reason.className = "cancel-reason";
      reason.placeholder = "motivo";
      reason.disabled = !allowed;
      td.append(reason, button("Cancelar", "cancel", () => cancelWindow(w, reason.value), allowed));
    }
    tr.append(td);
    return tr;
  });
  $("windows").tBodies[0].replaceChildren(...rows);
}

function renderAudit(entries) {
  const rows = entries.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.action = e.action;
    tr.dataset.name = e.name || "";
    tr.append(
      textCell(formatTime(e.at)), textCell(e.actor, "actor"), textCell(e.role),
      textCell(ACTION_LABEL[e.action] || e.action, "action"), textCell(e.name || "", "name"),
      textCell(formatValue(e.old_value)), textCell(formatValue(e.new_value)), textCell(e.reason, "reason"),
    );
    return tr;
  });
  $("audit").tBodies[0].replaceChildren(...rows);
}

function renderAlerts(alerts) {
  const items = alerts.map((a) => {
    const li = document.createElement("li");
    li.textContent = `${formatTime(a.at)} · ${a.kind} · ${a.source}: ${a.detail}`;
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.textContent = "Ninguna.";
    items.push(li);
  }
  $("alerts").replaceChildren(...items);
}

// --- calls ---------------------------------------------------------------------------
function outcomeRowsOf(byOutcome, empty) {
  const rows = Object.entries(byOutcome).sort((a, b) => b[1] - a[1]).map(([outcome, count]) => {
    const tr = document.createElement("tr");
    tr.dataset.outcome = outcome;
    tr.append(textCell(label(OUTCOME_LABEL, outcome), "label"), textCell(String(count), "count"));
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.append(textCell(empty), textCell(""));
    rows.push(tr);
  }
  return rows;
}

function renderCalls(summary) {
  $("call-in-progress").textContent = String(summary.in_progress);
  $("call-outcomes").tBodies[0].replaceChildren(
    ...outcomeRowsOf(summary.by_outcome, "Ninguna llamada terminada en las últimas 24 horas."));
}

async function refreshCalls() {
  try {
    const summary = await api("GET", "/api/calls/summary");
    $("calls-unavailable").hidden = true;
    $("calls-panel").hidden = false;
    renderCalls(summary);
  } catch (err) {
    if (err.status === 404) {  // a process without the call records
      $("calls-unavailable").hidden = false;
      $("calls-panel").hidden = true;
    } else {
      showError(err);
    }
  }
}

// --- chats (WhatsApp) ----------------------------------------------------------------
// Numbers are shown only as the server masks them (wa_id_masked, ivr.masking); the
// full number stays in this script's memory, for the release call, never in the page.
function label(labels, id) {
  return labels[id] || `otro (${id})`;
}

function windowLeft(iso) {
  if (!iso) return "sin ventana";
  const minutes = Math.floor((new Date(iso) - Date.now()) / 60000);
  if (minutes <= 0) return "cerrada (solo plantilla)";
  return `quedan ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function chatHolder(c) {
  if (c.state === "agent") return c.assigned_agent ? `asesor: ${c.assigned_agent}` : "asesor (en cola)";
  return c.state === "bot" ? "asistente automático" : "cerrada";
}

function renderChats(summary, conversations, handoffs) {
  $("chat-active").textContent = String(summary.active);
  $("chat-outcomes").tBodies[0].replaceChildren(
    ...outcomeRowsOf(summary.by_outcome, "Ninguna conversación terminada todavía."));

  const chatRows = conversations.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.conversation = c.id;
    tr.dataset.state = c.state;
    tr.append(
      textCell(c.wa_id_masked, "number"), textCell(c.node || "(esperando al asesor)", "node name"),
      textCell(chatHolder(c), c.state === "agent" ? "holder chat-agent" : "holder"),
      textCell(formatTime(c.last_activity_at), "activity"), textCell(windowLeft(c.service_window_ends_at), "window"),
    );
    return tr;
  });
  if (!chatRows.length) {
    const tr = document.createElement("tr");
    tr.append(textCell("Ninguna conversación activa."), textCell(""), textCell(""), textCell(""), textCell(""));
    chatRows.push(tr);
  }
  $("chats").tBodies[0].replaceChildren(...chatRows);

  const handoffRows = handoffs.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.handoff = String(h.id);
    tr.dataset.conversation = h.conversation_id;
    tr.dataset.taken = String(Boolean(h.taken_by));
    tr.append(
      textCell(h.wa_id_masked, "number"), textCell(label(HANDOFF_REASON_LABEL, h.reason), "reason"),
      textCell(formatTime(h.queued_at), "queued"), textCell(h.taken_by ? h.taken_by : "nadie todavía", "taken-by"),
    );
    const td = document.createElement("td");
    td.append(
      button("Tomar", "take", () => takeHandoff(h), isOperator() && !h.taken_by),
      button("Liberar", "release", () => releaseChat(h), isOperator()),
    );
    tr.append(td);
    return tr;
  });
  if (!handoffRows.length) {
    const tr = document.createElement("tr");
    tr.append(textCell("Nadie espera a un asesor."), textCell(""), textCell(""), textCell(""), textCell(""));
    handoffRows.push(tr);
  }
  $("handoffs").tBodies[0].replaceChildren(...handoffRows);
}

async function refreshChats() {
  try {
    const [summary, conversations, handoffs] = await Promise.all([
      api("GET", "/api/chat/summary"),
      api("GET", "/api/chat/conversations?active=true&limit=200"),
      api("GET", "/api/chat/handoffs"),
    ]);
    $("chats-unavailable").hidden = true;
    $("chats-panel").hidden = false;
    renderChats(summary, conversations.conversations, handoffs.handoffs);
  } catch (err) {
    if (err.status === 404) {  // a process without the assistant
      $("chats-unavailable").hidden = false;
      $("chats-panel").hidden = true;
    } else {
      showError(err);
    }
  }
}

async function takeHandoff(handoff) {
  try {
    await api("POST", `/api/chat/handoffs/${handoff.id}/take`);
    showNotice(`Conversación con ${handoff.wa_id_masked}: ahora la atiende usted.`);
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function releaseChat(handoff) {
  try {
    await api("POST", `/api/chat/conversations/${encodeURIComponent(handoff.wa_id)}/release`);
    showNotice(`Conversación con ${handoff.wa_id_masked}: de vuelta al asistente automático.`);
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function refresh() {
  try {
    const auditQuery = $("audit-filter").value ? `&name=${encodeURIComponent($("audit-filter").value)}` : "";
    const [flags, windows, audit, alerts] = await Promise.all([
      api("GET", "/api/flags"),
      api("GET", `/api/windows?include_past=${$("windows-all").checked}`),
      api("GET", `/api/audit?limit=200${auditQuery}`),
      api("GET", "/api/alerts?open=true"),
    ]);
    renderFlags(flags.flags);
    renderWindows(windows.windows);
    renderAudit(audit.entries);
    renderAlerts(alerts.alerts);
  } catch (err) {
    showError(err);
  }
  await Promise.all([refreshCalls(), refreshChats(), refreshNodes()]);
}

// --- changing ------------------------------------------------------------------------
function valueControl(flag, value) {
  let control;
  if (flag.kind === "bool" || flag.kind === "enum") {
    control = document.createElement("select");
    const choices = flag.kind === "bool" ? [["true", "encendido"], ["false", "apagado"]] : flag.choices.map((c) => [c, c]);
    for (const [v, label] of choices) control.append(new Option(label, v));
    control.value = String(value);
  } else {
    control = document.createElement("input");
    if (flag.kind === "int") {
      control.type = "number";
      if (flag.minimum !== undefined) control.min = flag.minimum;
      if (flag.maximum !== undefined) control.max = flag.maximum;
    } else {
      control.type = flag.kind === "date" ? "date" : "text";
    }
    control.value = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(",") : String(value);
  }
  control.id = "change-value";
  return control;
}

function readValue(flag) {
  const raw = $("change-value").value;
  switch (flag.kind) {
    case "bool": return raw === "true";
    case "int": return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    case "date": return raw === "" && flag.nullable ? null : raw;
    case "codes": return raw.split(",").map((c) => c.trim()).filter((c) => c);
    default: return raw;
  }
}

function edit(flag, value) {
  state.editing = flag;
  $("change-fields").disabled = false;
  $("change-name").value = flag.name;
  const limits = flag.kind === "int" ? ` (de ${flag.minimum} a ${flag.maximum})` : flag.kind === "codes" ? " (códigos CUPS separados por coma)" : "";
  $("change-help").textContent = `${flag.description} Por defecto: ${formatValue(flag.default)}${limits}.`;
  $("change-value-box").replaceChildren(valueControl(flag, value));
  $("change-reason").value = "";
  $("mode-now").checked = true;
  syncMode();
  $("change").scrollIntoView();
  $("change-reason").focus();
}

function syncMode() {
  $("window-fields").hidden = !$("mode-window").checked;
}

function localTime(id) {
  const raw = $(id).value;
  return raw ? new Date(raw).toISOString() : null;
}

async function applyChange(event) {
  event.preventDefault();
  const flag = state.editing;
  if (!flag) return;
  const value = readValue(flag);
  const reason = $("change-reason").value;
  try {
    if ($("mode-window").checked) {
      const body = { name: flag.name, value, reason };
      const start = localTime("window-start");
      const end = localTime("window-end");
      if (start) body.starts_at = start;
      if (end) body.ends_at = end;
      else body.duration_s = Math.round(Number($("window-minutes").value) * 60);
      await api("POST", "/api/windows", body);
      showNotice(`Ventana programada para ${flag.name}.`);
    } else {
      await api("PUT", `/api/flags/${encodeURIComponent(flag.name)}`, { value, reason });
      showNotice(`${flag.name}: ahora ${formatValue(value)}.`);
    }
    $("change-reason").value = "";
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function resetFlag() {
  const flag = state.editing;
  if (!flag) return;
  try {
    await api("DELETE", `/api/flags/${encodeURIComponent(flag.name)}`, { reason: $("change-reason").value });
    showNotice(`${flag.name}: de vuelta al valor por defecto.`);
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function cancelWindow(window_, reason) {
  try {
    await api("DELETE", `/api/windows/${encodeURIComponent(window_.id)}`, { reason });
    showNotice(`Ventana de ${window_.name} cancelada.`);
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function toggleIncident(event) {
  event.preventDefault();
  const active = $("incident").dataset.active !== "true";
  try {
    await api("POST", "/api/incident", { active, reason: $("incident-reason").value });
    $("incident-reason").value = "";
    showNotice(active ? "Modo incidente ENCENDIDO." : "Modo incidente apagado.");
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function downloadCsv(event) {
  event.preventDefault();
  const name = $("audit-filter").value;
  const query = name ? `?format=csv&name=${encodeURIComponent(name)}` : "?format=csv";
  try {
    const response = await fetch(`/api/audit${query}`, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`, Accept: "text/csv" },
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = "citas-audit.csv";
    link.click();
    URL.revokeObjectURL(link.href);
  } catch (err) {
    showError(err);
  }
}

// --- the parts' pages (cases, reports...: ApiExtension.pages) -------------------------------
// Each is its own HTML file under /console/; the token stays in this tab's sessionStorage,
// so a page opened from here is already signed in.
async function loadPages() {
  let pages = [];
  try {
    pages = (await api("GET", "/api/console/pages")).pages;
  } catch (err) {
    return; // the navigation is an aid: the console works without it
  }
  const nav = $("pages");
  const links = pages.length ? [{ href: "/console", title: "Operación" }, ...pages] : [];
  nav.replaceChildren(...links.map((page) => {
    const link = document.createElement("a");
    link.href = page.href;
    link.textContent = page.title;
    if (page.href === "/console") link.setAttribute("aria-current", "page");
    return link;
  }));
  nav.hidden = pages.length === 0;
}

// --- session ----------------------------------------------------------------------------
async function start() {
  try {
    state.me = await api("GET", "/api/whoami");
  } catch (err) {
    logout(err.status === 401 ? `Token no válido: ${err.message}` : `No se pudo ingresar: ${err.message}`);
    return;
  }
  $("whoami").textContent = `${state.me.name} (${ROLE_LABEL[state.me.role] || state.me.role})`;
  $("whoami").dataset.role = state.me.role;
  $("login").hidden = true;
  $("session").hidden = false;
  $("app").hidden = false;
  $("login-error").hidden = true;
  await loadPages();
  await refresh();
  clearInterval(state.timer);
  state.timer = setInterval(refresh, REFRESH_MS);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  state.me = null;
  state.editing = null;
  $("app").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  $("change-fields").disabled = true;
  $("change-name").value = "";
  $("change-value-box").replaceChildren();
  if (message) {
    $("login-error").textContent = message;
    $("login-error").hidden = false;
  }
}

function login(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-input").value = "";
  start();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  $("incident-form").addEventListener("submit", toggleIncident);
  $("change-form").addEventListener("submit", applyChange);
  $("change-reset").addEventListener("click", resetFlag);
  $("mode-now").addEventListener("change", syncMode);
  $("mode-window").addEventListener("change", syncMode);
  $("windows-all").addEventListener("change", refresh);
  $("audit-filter").addEventListener("change", refresh);
  $("audit-csv").addEventListener("click", downloadCsv);
  syncMode();
  if (sessionStorage.getItem(TOKEN_KEY)) start();
});
