// The agent's desktop (docs/desk/pop.md): the agent's state and presence buttons, the
// screen pop pushed over server-sent events, the script and escalation panels (other
// parts' modules, mounted when present) and the chat hand-off queue.
// The stream is read with fetch + a reader so the token goes in the Authorization header,
// never in a URL. Data is always written with textContent.
"use strict";
// TOKEN_KEY, ROLE_LABEL, $, api, ApiError, authHeaders, showError, showNotice: common.js.

const KIND_LABEL = { voice: "· llamada", chat: "· chat" };
const STATE_LABEL = { active: "en curso", wrapup: "en cierre (falta la tipificación)", closed: "cerrado", escalated: "escalado" };
const RECONNECT_MAX_MS = 10000;
const page = { me: null, agent: null, contact: null, pop: null, stream: null, panels: {} };

// An admin watching another agent's desktop: /console/escritorio.html?agent=7001
const agentParam = () => new URLSearchParams(location.search).get("agent");
const withAgent = (path) => (agentParam() ? `${path}?agent=${encodeURIComponent(agentParam())}` : path);

const guarded = (fn) => async (...args) => {
  try { await fn(...args); } catch (err) { showError(err); }
};

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

const formatTime = (iso) => (iso ? new Date(iso).toLocaleString("es-CO", { timeZone: "America/Bogota" }) : "");

// --- the agent -----------------------------------------------------------------------------
function renderAgent(agent) {
  page.agent = agent;
  $("agent-name").textContent = agent.name;
  $("agent-ext").textContent = agent.extension;
  $("agent-profile").textContent = agent.profile_name || agent.profile;
  $("agent-queues").textContent = (agent.queues || []).join(", ") || "ninguna";
  $("chats").hidden = !agent.chat;
}

function renderPresence(data) {
  let state = data.paused ? "en pausa" : (data.status_words || "disponible");
  if (data.state_words) state = data.state_words;
  $("agent-state").textContent = state;
  $("agent-pause-reason").textContent = data.paused && data.paused_reason ? `(${data.paused_reason})` : "";
}

// The queues part's view of the agent (GET /api/desk/agents: DeskAgent).
function renderQueueStatus(agent) {
  let state = "fuera de las colas";
  if (agent.logged_in) state = agent.paused ? "en pausa" : (agent.in_call ? "en llamada" : (agent.device_label || "disponible"));
  $("agent-state").textContent = state;
  $("agent-pause-reason").textContent = agent.paused && agent.pause_reason ? `(${agent.pause_reason})` : "";
  $("btn-login").disabled = agent.logged_in;
  $("btn-logout").disabled = !agent.logged_in;
  $("btn-pause").disabled = !agent.logged_in || agent.paused;
  $("btn-unpause").disabled = !agent.logged_in || !agent.paused;
}

async function loadQueueStatus() {
  const ext = page.agent.extension;
  const answer = await api("GET", "/api/desk/agents");
  const reasons = answer.pause_reasons || [];
  if (reasons.length && $("pause-reason").dataset.loaded !== "1") {
    $("pause-reason").replaceChildren(...reasons.map((r) => new Option(r.label, r.id)));
    $("pause-reason").dataset.loaded = "1";
  }
  const mine = (answer.agents || []).find((a) => a.extension === ext);
  if (mine) renderQueueStatus(mine);
}

async function presence(action) {
  const ext = page.agent.extension;
  const body = action === "pause" ? { reason: $("pause-reason").value } : undefined;
  const answer = await api("POST", `/api/desk/agents/${encodeURIComponent(ext)}/${action}`, body);
  renderQueueStatus(answer);
  const words = { login: "en las colas", logout: "fuera de las colas", pause: "en pausa", unpause: "disponible" }[action];
  showNotice(`Listo: ${words}.`);
  return answer;
}

// --- the pop -------------------------------------------------------------------------------
function fill(list, items, render) {
  list.replaceChildren(...items.map(render));
}

function renderPop(contact, pop) {
  page.contact = contact;
  page.pop = pop;
  const section = $("pop");
  if (!contact || !pop) {
    section.dataset.state = "empty";
    section.dataset.contact = "";
    $("pop-empty").hidden = false;
    $("pop-body").hidden = true;
    $("pop-kind").textContent = "";
    $("pop-state").textContent = "";
    mountPanels(null);
    return;
  }
  section.dataset.state = contact.state || "active";
  section.dataset.contact = contact.id;
  $("pop-empty").hidden = true;
  $("pop-body").hidden = false;
  $("pop-kind").textContent = KIND_LABEL[pop.kind] || "";
  $("pop-state").textContent = `(${STATE_LABEL[contact.state] || contact.state})`;
  const caller = pop.caller || {};
  $("pop-name").textContent = caller.name || "Sin identificar";
  $("pop-document").textContent = caller.document || "-";
  $("pop-phone").textContent = caller.phone || "-";
  $("pop-plan-site").textContent = [caller.plan, caller.site].filter(Boolean).join(" · ") || "-";
  const queue = pop.queue || {};
  $("pop-queue").textContent = `${queue.name || queue.id || ""}${queue.level ? ` (nivel ${queue.level})` : ""}`;
  $("pop-hold").textContent = `${pop.hold_seconds || 0} s`;
  $("pop-segment").textContent = (pop.segment && pop.segment.label) || "Sin clasificar";
  $("pop-segment").dataset.code = (pop.segment && pop.segment.code) || "";
  fill($("pop-reasons"), pop.reasons || [], (r) => el("li", r));
  const facts = [];
  for (const f of pop.facts || []) facts.push(el("dt", f.label), el("dd", f.value));
  $("pop-facts").replaceChildren(...facts);
  $("pop-pending").hidden = !(pop.pending || []).length;
  fill($("pop-path"), pop.path || [], (p) => el("li", p));
  const rows = (pop.appointments || []).map((a) => {
    const tr = el("tr");
    for (const v of [a.when, a.what, a.doctor, a.where, a.state]) tr.append(el("td", v));
    return tr;
  });
  if (!rows.length) {
    const none = el("tr");
    none.append(Object.assign(el("td", "Sin citas pendientes"), { colSpan: 5 }));
    rows.push(none);
  }
  $("pop-appointments").tBodies[0].replaceChildren(...rows);
  const c = pop.open_case;
  $("pop-case").textContent = c ? `${c.number} · ${c.state} · vence ${c.due} · ${c.summary}` : "Ninguno";
  fill($("pop-chat"), pop.chat || [], (m) => {
    const li = el("li");
    li.append(el("span", `${m.at} ${m.from}:`, "who"), el("span", m.text));
    return li;
  });
  if (!(pop.chat || []).length) $("pop-chat").append(el("li", "Sin conversación de chat en este recorrido"));
  fill($("pop-hops"), pop.hops || [], (h) => {
    const li = el("li", `Nivel ${h.level} · ${h.agent_name} (${h.queue}) · ${formatTime(h.answered_at)} · ${STATE_LABEL[h.state] || h.state}${h.escalation_reason ? ` · motivo: ${h.escalation_reason}` : ""}`);
    if ((h.steps || []).length) {
      const steps = el("ol");
      for (const s of h.steps) steps.append(el("li", `${s.label || s.node_id}${s.answer ? `: ${s.answer}` : ""}`));
      li.append(steps);
    }
    return li;
  });
  if (!(pop.hops || []).length) $("pop-hops").append(el("li", "Primer nivel: no hay niveles anteriores"));
  mountPanels(contact);
}

// The script (scripts part) and escalation (levels part) panels: their modules, when
// served, export (or set on window) mountScript / mountEscalation(element, contact).
async function loadPanel(file, name) {
  try {
    const mod = await import(`/console/${file}`);
    return mod[name] || window[name] || null;
  } catch (err) {
    return null;  // the part is not installed: the section keeps its hint
  }
}

function mountPanels(contact) {
  for (const [id, name] of [["guion", "mountScript"], ["escalar", "mountEscalation"]]) {
    const mount = page.panels[name];
    if (mount) {
      try { mount($(id), contact); } catch (err) { showError(err); }
    }
  }
}

// --- the stream ----------------------------------------------------------------------------
function handle(event, data) {
  if (event === "hello") {
    renderAgent(data.agent);
    return refreshCurrent();  // subscribed first: nothing falls between the two
  }
  if (event === "pop") {
    renderPop(data.contact, data.pop);
    $("agent-state").textContent = "en llamada";
  } else if (event === "wrapup") {
    if (page.contact && page.contact.id === data.contact.id) renderPop(data.contact, page.pop);
    $("agent-state").textContent = "en cierre";
  } else if (event === "ringing") {
    $("agent-state").textContent = `timbrando (${(data.queue && data.queue.name) || ""})`;
  } else if (event === "ring_no_answer") {
    $("agent-state").textContent = "no contestó";
  } else if (event === "presence") {
    renderPresence(data);
  }
  return null;
}

async function refreshCurrent() {
  const current = await api("GET", withAgent("/api/desk/current"));
  renderAgent(current.agent);
  renderPop(current.contact, current.pop);
}

function parseFrame(frame) {
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (!line || line.startsWith(":")) continue;  // a heartbeat comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: JSON.parse(data.join("\n")) } : null;
}

async function readStream() {
  const controller = new AbortController();
  page.stream = controller;
  const response = await fetch(withAgent("/api/desk/stream"), {
    headers: { ...authHeaders(), Accept: "text/event-stream" },
    signal: controller.signal,
    cache: "no-store",
  });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  $("stream-state").textContent = "conectado";
  $("stream-state").dataset.state = "on";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (frame) await handle(frame.event, frame.data);
    }
  }
}

async function streamForever() {
  let delay = 500;
  for (;;) {
    try {
      await readStream();
      delay = 500;
    } catch (err) {
      if (err.status === 401 || err.status === 403) { showError(err); return; }
    }
    $("stream-state").textContent = "reconectando…";
    $("stream-state").dataset.state = "off";
    await new Promise((resolve) => setTimeout(resolve, delay));  // back-off between reconnects
    delay = Math.min(delay * 2, RECONNECT_MAX_MS);
  }
}

// --- chat hand-offs ------------------------------------------------------------------------
async function loadHandoffs() {
  if (!page.agent || !page.agent.chat) return;
  const { handoffs } = await api("GET", "/api/chat/handoffs");
  const rows = handoffs.map((h) => {
    const tr = el("tr");
    tr.dataset.handoff = h.id;
    tr.append(el("td", formatTime(h.queued_at)), el("td", h.wa_id_masked), el("td", h.reason),
      el("td", h.taken_by ? `tomado por ${h.taken_by}` : "en espera"));
    const td = el("td");
    if (!h.taken_by) {
      const take = el("button", "Tomar");
      take.type = "button";
      take.className = "take";
      take.addEventListener("click", guarded(async () => {
        const answer = await api("POST", withAgent(`/api/desk/handoffs/${h.id}/take`));
        renderPop(answer.contact, answer.pop);
        showNotice("Chat tomado.");
        await loadHandoffs();
      }));
      td.append(take);
    }
    tr.append(td);
    return tr;
  });
  $("handoffs").tBodies[0].replaceChildren(...rows);
}

// --- start ---------------------------------------------------------------------------------
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
  page.panels.mountScript = await loadPanel("desk-script.js", "mountScript");
  page.panels.mountEscalation = await loadPanel("desk-levels.js", "mountEscalation");
  await refreshCurrent();
  try {
    await loadQueueStatus();
  } catch (err) {
    if (err.status !== 404) throw err;  // no queues on this server (ivr ops serve without AMI)
  }
  await loadHandoffs();
  streamForever();
  setInterval(guarded(loadHandoffs), 10000);
}

// The page's own words for errors (common.js's defaults otherwise); a 401 shows the login.
setupErrors({ prefixes: { 422: "No se pudo" }, onUnauthorized: showLogin });

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", guarded(async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    await start();
  }));
  for (const action of ["login", "logout", "pause", "unpause"]) {
    $(`btn-${action}`).addEventListener("click", guarded(() => presence(action)));
  }
  $("chats-refresh").addEventListener("click", guarded(loadHandoffs));
  guarded(start)();
});
