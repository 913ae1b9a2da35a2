// "Reportes del escritorio": the six desk reports of /api/desk/reports/*, as cards, tables and charts.
// Charts are inline SVG drawn here (no library, no network: the console runs offline).
// Every time shown is Bogotá's (the line's zone), whatever the browser's zone.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const ZONE = "America/Bogota";
const REPORTS = ["reasons", "steps", "paths", "mismatch", "levels", "agents"];
const NUMBER = new Intl.NumberFormat("es-CO", { maximumFractionDigits: 1 });
const WALL = new Intl.DateTimeFormat("es-CO", {
  timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
const BY_LABEL = { day: "día", agent: "asesor", site: "sede" };

// TOKEN_KEY, $, ApiError, api, showError: /console/common.js (loaded first)
setupErrors({
  prefixes: { 422: "Consulta rechazada" },
  onUnauthorized: () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); },
});

// --- formatting -----------------------------------------------------------------
const num = (n) => (n === null || n === undefined ? "—" : NUMBER.format(n));
const pct = (n) => (n === null || n === undefined ? "—" : `${NUMBER.format(n)} %`);
function seconds(s) { // a step or a wait: "45 s", "2 min 05 s"
  if (s === null || s === undefined) return "—";
  const whole = Math.round(s);
  const m = Math.floor(whole / 60);
  return m ? `${m} min ${String(whole % 60).padStart(2, "0")} s` : `${whole} s`;
}
function hours(s) { // presence: "7 h 05 min"
  if (s === null || s === undefined) return "—";
  const minutes = Math.round(s / 60);
  const h = Math.floor(minutes / 60);
  return h ? `${h} h ${String(minutes % 60).padStart(2, "0")} min` : `${minutes} min`;
}
function cell(tag, text, cls) {
  const td = document.createElement(tag);
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function row(values, numeric = []) {
  const tr = document.createElement("tr");
  values.forEach((v, i) => tr.append(cell("td", v, numeric.includes(i) ? "num" : "")));
  return tr;
}
function listed(counts, format = num) {
  return Object.entries(counts).map(([k, v]) => `${k}: ${format(v)}`).join("; ") || "—";
}

// --- SVG --------------------------------------------------------------------------
function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}
function shortKey(key, length = 14) { // 2026-11-30 → 30/11
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(key);
  if (m) return `${m[3]}/${m[2]}`;
  return key.length > length ? `${key.slice(0, length - 1)}…` : key;
}
// Vertical bars: one per label, its value above it; `lowBelow` marks bars under a threshold.
function barChart(container, labels, values, opts = {}) {
  const width = Math.max(360, Math.min(1300, labels.length * (opts.slot || 52) + 60));
  const height = 220, left = 40, bottom = 40, top = 16;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": opts.label || "" });
  container.replaceChildren(svg);
  const known = values.filter((v) => v !== null && v !== undefined);
  if (!known.length || known.every((v) => v === 0)) {
    svg.append(svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "Sin datos en el periodo"));
    return;
  }
  const max = opts.max || Math.max(...known, 1);
  const slot = (width - left - 10) / labels.length;
  const every = Math.ceil(labels.length / 24);
  svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width - 5, y2: height - bottom, class: "axis" }));
  labels.forEach((label, i) => {
    const v = values[i];
    const x = left + i * slot + slot * 0.15;
    if (v !== null && v !== undefined) {
      const h = ((height - bottom - top) * v) / max;
      const low = opts.lowBelow !== undefined && v < opts.lowBelow;
      const bar = svgEl("rect", { x, y: height - bottom - h, width: slot * 0.7, height: Math.max(h, 0), class: low ? "bar low" : "bar", "data-key": label });
      const shown = opts.format ? opts.format(v) : num(v);
      bar.append(svgEl("title", {}, `${label}: ${shown}`));
      svg.append(bar);
      svg.append(svgEl("text", { x: x + slot * 0.35, y: height - bottom - h - 3, "text-anchor": "middle" }, shown));
    }
    if (i % every === 0) svg.append(svgEl("text", { x: x + slot * 0.35, y: height - bottom + 14, "text-anchor": "middle" }, shortKey(label, opts.keyLength)));
  });
}

// --- the reports ------------------------------------------------------------------
function showReasons(r) {
  $("reasons-contacts").textContent = num(r.contacts);
  const by = BY_LABEL[r.by];
  $("chart-reasons-title").textContent = `Contactos por ${by}`;
  const keys = Object.keys(r.by_key);
  barChart($("chart-reasons"), keys, keys.map((k) => r.by_key[k]), { label: `Contactos por ${by}` });
  $("t-call-types").tBodies[0].replaceChildren(...Object.entries(r.by_call_type).map(([t, n]) => row([t, num(n)], [1])));
  const head = document.createElement("tr");
  for (const h of [by[0].toUpperCase() + by.slice(1), "Tipo de llamada", "Motivo", "Escenario", "Procedimiento", "Tipificación"]) head.append(cell("th", h));
  head.append(cell("th", "Contactos", "num"));
  $("t-reasons").tHead.replaceChildren(head);
  $("t-reasons").tBodies[0].replaceChildren(...r.rows.map((x) => row([x.key, x.call_type, x.reason, x.scenario, x.procedure, x.disposition, num(x.contacts)], [6])));
}

function showSteps(r) {
  const rows = r.rows;
  barChart($("chart-steps"), rows.map((x) => x.label), rows.map((x) => x.p90_s), { label: "p90 por paso", format: (v) => `${num(v)} s`, slot: 84, keyLength: 11 });
  $("t-steps").tBodies[0].replaceChildren(...rows.map((x) => {
    const tr = row([x.label, x.node_id, num(x.steps), seconds(x.p50_s), seconds(x.p90_s), seconds(x.max_s)], [2, 3, 4, 5]);
    tr.dataset.node = x.node_id;
    return tr;
  }));
}

function showPaths(r) {
  $("paths-with-steps").textContent = num(r.with_steps);
  $("t-paths").tBodies[0].replaceChildren(...r.rows.slice(0, 30).map((p) => row([p.labels.join(" → "), num(p.contacts), pct(p.share_pct)], [1, 2])));
}

function showMismatch(r) {
  $("mismatch-pct").textContent = pct(r.mismatch_pct);
  $("mismatch-detail").textContent = `${r.mismatched} de ${r.judged} contactos evaluados`;
  const head = document.createElement("tr");
  head.append(cell("th", "Motivo del IVR"));
  for (const t of r.call_types) head.append(cell("th", t, "num"));
  head.append(cell("th", "% no coincide", "num"));
  $("t-matrix").tHead.replaceChildren(head);
  const per = Object.fromEntries(r.by_ivr_reason.map((x) => [x.ivr_reason, x]));
  const named = (ivr) => (r.labels[ivr] ? `${r.labels[ivr]} (${ivr})` : ivr);
  $("t-matrix").tBodies[0].replaceChildren(...r.ivr_reasons.map((ivr) => {
    const tr = document.createElement("tr");
    tr.dataset.ivrReason = ivr;
    tr.append(cell("td", named(ivr)));
    const expected = r.expected[ivr];
    for (const t of r.call_types) {
      const n = r.cells[ivr][t] || 0;
      const cls = !expected || !n ? "heat" : expected.includes(t) ? "heat on" : "heat off";
      const td = cell("td", n ? num(n) : "", cls);
      td.dataset.callType = t;
      tr.append(td);
    }
    tr.append(cell("td", expected ? pct(per[ivr].mismatch_pct) : "sin referencia", "num"));
    return tr;
  }));
  $("t-top").tBodies[0].replaceChildren(...r.top.map((t) => row([named(t.ivr_reason), t.call_type, t.reason, num(t.contacts)], [3])));
}

function showLevels(r) {
  const t = r.total;
  $("levels-within-label").textContent = `Atendidos en ≤ ${num(r.within_s)} s`;
  $("levels-within-pct").textContent = pct(t.within_pct);
  $("levels-within-detail").textContent = `${t.within} de ${t.waited} con espera medida`;
  $("levels-wait").textContent = seconds(t.wait_avg_s);
  $("levels-escalations").textContent = num(t.escalations);
  const queues = r.rows.filter((x) => x.queue !== "total");
  barChart($("chart-levels"), queues.map((x) => x.queue), queues.map((x) => x.within_pct), { label: "% en umbral por cola", max: 100, lowBelow: 80, format: pct });
  const line = (x, level, queue) => {
    const tr = row([level, queue, num(x.contacts), num(x.within), pct(x.within_pct), seconds(x.wait_avg_s), seconds(x.at_level_avg_s), num(x.escalations), listed(x.escalation_reasons)], [2, 3, 4, 5, 6, 7]);
    tr.dataset.queue = `${x.level}:${x.queue}`;
    return tr;
  };
  $("t-levels").tBodies[0].replaceChildren(...r.rows.map((x) => line(x, `Nivel ${x.level}`, x.queue === "total" ? "subtotal" : x.queue)));
  $("t-levels").tFoot.replaceChildren(line(t, "Total", ""));
  $("t-hops").tBodies[0].replaceChildren(...Object.entries(r.hops).map(([k, n]) => row([k, num(n)], [1])));
}

function showAgents(r) {
  $("t-agents").tBodies[0].replaceChildren(...r.rows.map((a) => {
    const tr = row([`${a.name} (${a.agent})`, num(a.contacts), num(a.closed), num(a.escalated), seconds(a.handle_avg_s), hours(a.logged_in_s), hours(a.paused_s), listed(a.paused_by_reason, hours)], [1, 2, 3, 4, 5, 6]);
    tr.dataset.agent = a.agent;
    return tr;
  }));
}

const SHOW = { reasons: showReasons, steps: showSteps, paths: showPaths, mismatch: showMismatch, levels: showLevels, agents: showAgents };

// --- the page ----------------------------------------------------------------------
function params() {
  const q = new URLSearchParams();
  for (const [name, id] of [["from", "f-from"], ["to", "f-to"], ["agent", "f-agent"], ["site", "f-site"], ["by", "f-by"], ["within", "f-within"]]) {
    const v = $(id).value;
    if (v) q.set(name, v);
  }
  return q;
}

function fillSelect(id, options, allLabel) {
  const select = $(id);
  const current = select.value;
  select.replaceChildren(new Option(allLabel, ""));
  for (const [value, label] of options) select.append(new Option(label, value));
  if (current && !options.some(([v]) => v === current)) select.append(new Option(current, current));
  select.value = current;
}

function lastDay(endIso) { // the day before the period's end, in the server's zone (written with its offset)
  const d = new Date(`${endIso.slice(0, 10)}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

async function refresh() {
  $("loading").hidden = false;
  try {
    const q = params();
    const found = await Promise.all(REPORTS.map((name) => api("GET", `/api/desk/reports/${name}?${q}`)));
    showError(null);
    const first = found[0];
    fillSelect("f-agent", first.options.agents.map((a) => [a.agent, `${a.name} (${a.agent})`]), "todos");
    fillSelect("f-site", first.options.sites.map((s) => [s, s]), "todas");
    if (!$("f-from").value) $("f-from").value = first.start.slice(0, 10);
    if (!$("f-to").value) $("f-to").value = lastDay(first.end);
    $("as-of").textContent = `${WALL.format(new Date(first.as_of))} (hora de Bogotá)`;
    $("as-of").dataset.iso = first.as_of;
    found.forEach((report) => SHOW[report.report](report));
    document.body.dataset.loaded = String(Date.now());
  } catch (err) {
    showError(err);
  } finally {
    $("loading").hidden = true;
  }
}

// The export of `report` in `format` (csv, xlsx) for the filters on screen.
function download(report, format) {
  const q = params();
  q.set("format", format);
  return downloadFile(`/api/desk/reports/${report}/export?${q}`, `escritorio-${report}.${format}`);
}

function showLogin() {
  $("app").hidden = true;
  $("login").hidden = false;
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  for (const id of ["f-agent", "f-site", "f-by"]) $(id).addEventListener("change", refresh);
  for (const link of document.querySelectorAll("section[data-report] a[data-format]")) {
    link.addEventListener("click", (e) => {
      e.preventDefault();
      download(link.closest("section").dataset.report, link.dataset.format);
    });
  }
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    start();
  });
  if (sessionStorage.getItem(TOKEN_KEY)) start(); else showLogin();
});
