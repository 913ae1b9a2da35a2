// The console's cases page (docs/cases/backoffice.md): the queue, one case's history,
// assign, answer, close. Plain DOM over the ops API; data always written with textContent.
// The token is the console's (sessionStorage, the same key as console.js).
// TOKEN_KEY, ROLE_LEVEL, ROLE_LABEL, $, api, ApiError, showError, showNotice, textCell: common.js.
"use strict";

const STATE_LABEL = { open: "abierto", assigned: "asignado", answered: "respondido", closed: "cerrado" };
const PRIORITY_LABEL = { normal: "normal", high: "alta" };
const CHANNEL_LABEL = { email: "correo", whatsapp: "WhatsApp", voice: "teléfono", chat: "chat" };
const ACTION_LABEL = {
  filed: "radicado", assigned: "asignación", answered: "respuesta", answer_sent: "respuesta enviada",
  answer_failed: "respuesta NO enviada", closed: "cierre", priority_raised: "prioridad alta",
  sla_warning: "alerta de SLA",
};
const page = { me: null, options: null, current: null };

setupErrors({ prefixes: { 422: "No se pudo" }, onUnauthorized: () => showLogin() });

// Instants are shown, and the "vence antes de" filter read, in the cases' time zone
// (cases.yaml `timezone`, from /api/case-options), not the browser's: the promise told
// to the caller ("a más tardar el lunes 7", 17:00 in Bogotá) must read the same to an
// operator whose machine runs on UTC.
const caseZone = () => (page.options && page.options.timezone) || "America/Bogota";
const formatTime = (iso) => (iso ? new Date(iso).toLocaleString("es-CO", { timeZone: caseZone() }) : "");

// "YYYY-MM-DDTHH:MM" (a datetime-local input) read as a wall-clock time in `zone`,
// as an ISO 8601 instant: the zone's offset at that wall time, found with Intl.
function zonedToIso(local, zone) {
  const asUtc = new Date(`${local.length === 16 ? `${local}:00` : local}Z`);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(asUtc).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return new Date(asUtc.getTime() - (wall - asUtc.getTime())).toISOString();
}
const isOperator = () => page.me && ROLE_LEVEL[page.me.role] >= ROLE_LEVEL.operator;

function slaText(sla) {
  const marks = [];
  if (sla.due_overdue) marks.push("promesa vencida");
  if (sla.first_response_overdue) marks.push("1.ª respuesta vencida");
  if (sla.resolution_overdue) marks.push("resolución vencida");
  return marks.length ? marks.join(", ") : "en plazo";
}

// --- the queue ------------------------------------------------------------------------
function filterQuery() {
  const q = new URLSearchParams();
  const add = (name, value) => { if (value) q.set(name, value); };
  add("state", $("filter-state").value);
  add("site", $("filter-site").value.trim());
  add("service", $("filter-service").value.trim());
  add("group", $("filter-group").value);
  add("assignee", $("filter-assignee").value.trim());
  if ($("filter-due").value) add("due_before", zonedToIso($("filter-due").value, caseZone()));
  if ($("filter-overdue").checked) q.set("overdue", "true");
  return q.toString();
}

async function loadQueue() {
  const query = filterQuery();
  const data = await api("GET", "/api/cases" + (query ? `?${query}` : ""));
  const rows = data.cases.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.number = c.number;
    tr.dataset.state = c.state;
    const overdue = c.sla.due_overdue || c.sla.first_response_overdue || c.sla.resolution_overdue;
    tr.append(
      textCell(c.number, "name"), textCell(formatTime(c.filed_at)), textCell(formatTime(c.due_at)),
      textCell(STATE_LABEL[c.state] || c.state, "state"), textCell(PRIORITY_LABEL[c.priority] || c.priority, c.priority === "high" ? "value-off" : ""),
      textCell(c.site_id), textCell(c.service_id), textCell(groupName(c.group)), textCell(c.assignee || "—", "assignee"),
      textCell(slaText(c.sla), overdue ? "sla value-off" : "sla"),
    );
    const td = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open-case";
    open.textContent = "Abrir";
    open.addEventListener("click", () => openCase(c.number).catch(showError));
    td.append(open);
    tr.append(td);
    return tr;
  });
  $("cases").tBodies[0].replaceChildren(...rows);
  $("queue-count").textContent = `${rows.length} caso(s).`;
}

function groupName(id) {
  const group = page.options && page.options.groups.find((g) => g.id === id);
  return group ? group.name : id;
}

// --- one case ---------------------------------------------------------------------------
async function openCase(number) {
  render(await api("GET", `/api/cases/${encodeURIComponent(number)}`));
}

function render(detail) {
  const c = detail.case;
  page.current = detail;
  $("detail").hidden = false;
  $("detail").dataset.number = c.number;
  $("detail").dataset.state = c.state;
  $("detail").dataset.version = String(c.version);
  $("detail-number").textContent = c.number;
  $("detail-state").textContent = STATE_LABEL[c.state] || c.state;
  const fields = [
    ["Resumen", c.summary], ["Afiliado", c.affiliate_id], ["Especialidad", c.specialty],
    ["Servicio", `${c.service_id} (CUPS ${c.cups})`], ["Sede", c.site_id],
    ["Canal", CHANNEL_LABEL[c.channel] || c.channel], ["Correo de contacto", c.contact_email || "—"],
    ["Teléfono de contacto", c.contact_phone || "—"], ["Prioridad", (PRIORITY_LABEL[c.priority] || c.priority) + (c.priority_reason ? ` (${c.priority_reason})` : "")],
    ["Grupo", groupName(c.group)], ["Responsable", c.assignee || "—"],
    ["Radicado", formatTime(c.filed_at)], ["Respuesta prometida", formatTime(c.due_at)],
    ["Primera respuesta (SLA)", `${formatTime(c.first_response_due_at)}${c.first_response_at ? ` · respondido ${formatTime(c.first_response_at)}` : ""}`],
    ["Resolución (SLA)", formatTime(c.resolution_due_at)], ["SLA", slaText(c.sla)],
    ["Resolución", c.resolution || "—"],
  ];
  const dl = $("detail-fields");
  dl.replaceChildren();
  for (const [name, value] of fields) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }
  $("events").tBodies[0].replaceChildren(...detail.events.map(eventRow));

  const closed = c.state === "closed";
  $("operator-forms").hidden = !isOperator() || closed;
  $("assign-to").value = c.assignee || "";
  $("assign-group").value = c.group;
  $("answer-email-to").textContent = c.contact_email || "sin correo";
  $("answer-email").disabled = !c.contact_email;
  $("answer-email").checked = Boolean(c.contact_email);
  const wa = detail.whatsapp;
  $("answer-whatsapp").disabled = !wa.open;
  $("answer-whatsapp").checked = false;
  $("whatsapp-note").textContent = wa.open
    ? `Ventana de 24 horas abierta hasta ${formatTime(wa.ends_at)}.`
    : wa.reason;
}

function eventRow(e) {
  const tr = document.createElement("tr");
  tr.dataset.action = e.action;
  let detail = e.detail || "";
  if ((e.action === "answer_sent" || e.action === "answer_failed") && e.new && e.new.channel) detail = `${CHANNEL_LABEL[e.new.channel] || e.new.channel}${e.new.to ? ` a ${e.new.to}` : ""}${detail ? `: ${detail}` : ""}`;
  else if (e.action === "filed" && e.new) detail = `por ${CHANNEL_LABEL[e.new.channel] || e.new.channel}`;
  else if (e.action === "assigned" && e.new) detail = `${e.new.assignee || "sin responsable"} · grupo ${groupName(e.new.group)}`;
  else if (e.action === "answered" && e.new && e.new.channels) detail = `(${e.new.channels.map((ch) => CHANNEL_LABEL[ch] || ch).join(", ")}) ${detail}`;
  tr.append(textCell(formatTime(e.at)), textCell(e.actor), textCell(ACTION_LABEL[e.action] || e.action, "action"), textCell(detail));
  return tr;
}

async function change(path, body, done) {
  const c = page.current.case;
  const detail = await api("POST", `/api/cases/${c.number}/${path}`, { ...body, expected_version: c.version });
  render(detail);
  showNotice(done);
  await loadQueue();
}

// --- start --------------------------------------------------------------------------------
function showLogin() {
  $("login").hidden = false;
  $("app").hidden = true;
}

async function start() {
  try {
    page.me = await api("GET", "/api/whoami");
  } catch (err) {
    if (err.status === 401) { showLogin(); return; }
    throw err;
  }
  $("whoami").textContent = `${page.me.name} (${ROLE_LABEL[page.me.role] || page.me.role})`;
  $("session").hidden = false;
  $("login").hidden = true;
  $("app").hidden = false;
  page.options = await api("GET", "/api/case-options");
  for (const g of page.options.groups) {
    $("filter-group").append(new Option(g.name, g.id));
    $("assign-group").append(new Option(g.name, g.id));
  }
  $("people").replaceChildren(...page.options.people.map((p) => new Option(p.name, p.id)));
  await loadQueue();
}

function guarded(handler) {
  return (event) => {
    event.preventDefault();
    const buttons = event.currentTarget.querySelectorAll ? event.currentTarget.querySelectorAll("button") : [];
    for (const b of buttons) b.disabled = true;  // one click, one request
    Promise.resolve().then(() => handler(event)).catch(showError).finally(() => { for (const b of buttons) b.disabled = false; });
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", guarded(async () => {
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    await start();
  }));
  $("filters").addEventListener("submit", guarded(loadQueue));
  $("filter-clear").addEventListener("click", () => {
    $("filters").reset();
    loadQueue().catch(showError);
  });
  $("assign-me").addEventListener("click", () => { $("assign-to").value = page.me.name; });
  $("assign-form").addEventListener("submit", guarded(() => {
    const to = $("assign-to").value.trim();
    return change("assign", { assignee: to || null, group: $("assign-group").value }, "Caso asignado.");
  }));
  $("unassign").addEventListener("click", () => {
    change("assign", { assignee: null }, "Caso devuelto a la cola del grupo.").catch(showError);
  });
  $("answer-form").addEventListener("submit", guarded(() => {
    const channels = [];
    if ($("answer-email").checked) channels.push("email");
    if ($("answer-whatsapp").checked) channels.push("whatsapp");
    if (!channels.length) throw new ApiError(422, { message: "Elija el canal de la respuesta: correo y/o WhatsApp." });
    return change("answer", { text: $("answer-text").value, channels }, "Respuesta registrada; el envío queda en el historial.")
      .then(() => { $("answer-text").value = ""; });
  }));
  $("close-form").addEventListener("submit", guarded(() =>
    change("close", { resolution: $("close-resolution").value }, "Caso cerrado.")));
  start().catch(showError);
});
